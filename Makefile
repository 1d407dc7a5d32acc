# The two commands of the README. Each one builds .venv from the pinned requirements when
# it is missing or the requirements changed, so a fresh clone needs nothing else.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-long bench package clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m devstack

# Two workers: the machines have two cores, and each worker starts its own emulator.
test: $(STAMP)
	$(PY) -m pytest -n 2

test-long: $(STAMP)
	$(PY) -m pytest -m long --override-ini="addopts="

bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf $(VENV) .local

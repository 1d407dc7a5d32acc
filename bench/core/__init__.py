"""Cloud-core benches: cold import of app.py, DynamoDB calls and our own CPU per operation.

Run with `python -m bench.core.run` (or `make bench`). Nothing is imported here (see bench/__init__.py).
"""

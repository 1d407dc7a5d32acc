"""Benchmarks: `make bench` (= `python -m bench`) runs every bench/<name>/run.py. See bench/README.md.

Nothing is imported here: the cold-import bench imports bench.core.bare_app in a fresh
interpreter, and this package's import must cost it nothing.
"""

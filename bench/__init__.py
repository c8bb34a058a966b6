"""Benchmarks: each `bench/bench_*.py` module runs with `python -m bench.<name>` and prints JSON."""

"""Benchmarks: each bench_*.py module has a main() printing ratios against a baseline
measured side by side in the same run (run all with `python -m bench`)."""

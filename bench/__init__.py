"""Benchmarks: each module exposes ``main(argv)`` and runs as ``python -m bench.<name>``. They measure and
print; none of them is a timed test."""

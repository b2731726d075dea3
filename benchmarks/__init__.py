"""Reproducible benchmarks: each module runs as ``python -m benchmarks.<name>``, prints a table and writes JSON.

Modules: ``sliced_vs_sahi``, ``plain_vs_sliced``, ``api_overhead``, ``load``, ``gpu``. Results (with a description
of the machine and of the other work running on it) go to ``benchmarks/results/<name>.json``; see docs/benchmarks.md.
"""

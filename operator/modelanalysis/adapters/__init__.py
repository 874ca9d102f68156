"""Adapters: the code that talks to the outside world (Triton, perf_analyzer, Prometheus, files)."""

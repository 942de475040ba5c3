"""Benchmarks: each ``bench/<name>.py`` with a ``main()`` writes ``bench/results/<name>.json``."""

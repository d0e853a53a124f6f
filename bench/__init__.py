"""Benchmarks and scale proof of the SCIM endpoint: ``make bench`` (``python -m bench``).

What each part measures and how to read the figures: ``bench/README.md``. Every figure is a
median over repeats; every comparison with a peer is a ratio measured in the same run.
"""

"""Benchmarks: each prints, from one run, the figures it measures and the ratios between them."""

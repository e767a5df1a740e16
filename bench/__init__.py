"""Benchmarks: one module per benchmark, each printing a summary and writing a JSON report."""

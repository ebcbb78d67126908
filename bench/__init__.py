"""Benchmarks (scripts, not tests): the product against the bare stack it is built on, in the same run."""

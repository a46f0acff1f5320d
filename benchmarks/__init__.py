"""Benchmarks: scripts (not tests) that time the project's decoder against transformers. See benchmarks/README.md."""

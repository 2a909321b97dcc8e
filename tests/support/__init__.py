"""Helpers shared by tests and benchmarks (fixtures data, fake events); not tests themselves."""

"""Dev tooling: local servers, the local pipeline harness, synthetic data and the demo.

Not part of the product: nothing in handlers/ or imaging_cli imports it (a test checks).
"""

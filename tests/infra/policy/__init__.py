"""Our own policy rules over synthesized cdk.tf.json stacks (used by tests/infra/test_policy.py)."""

"""Operator CLI `imaging`."""

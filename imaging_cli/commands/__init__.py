"""Subcommands of `imaging`; each module defines `register(subparsers)`."""

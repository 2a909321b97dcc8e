"""Reusable CDK Terrain (cdktn) constructs of the imaging pipeline.

Importing this package first installs the lazy loader of the google provider, so each
construct pays only for the provider classes it uses (see `_provider.py`).
"""

from modules._provider import install_lazy_provider

install_lazy_provider()

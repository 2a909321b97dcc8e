"""The release version, defined once (pyproject, `imaging --version` and labels read it here).

Kept inside the function's package so the deployed function knows its own release without the
repository around it. Releases are tagged `v<version>` (see CHANGELOG.md).
"""

__version__ = "0.2.0"


def label_value(version: str = __version__) -> str:
    """The version as a Google Cloud label value (lowercase letters, digits, `_` and `-`)."""
    return "v" + version.lower().replace(".", "-").replace("+", "_")

"""Missing or unusable Google credentials, told in one line with what to do.

google-auth raises `DefaultCredentialsError` (none found, or an unreadable/invalid file) and
`RefreshError` (found but refused: revoked, expired user login, deleted service account) from
wherever a client first needs a token, often deep inside a listing or an upload. `imaging`
catches both at the top (imaging_cli.main), so every command answers the same way: one line on
stderr, exit status 2, no traceback.
"""

from __future__ import annotations

HINT = (
    "run `gcloud auth application-default login` (or set GOOGLE_APPLICATION_CREDENTIALS to a "
    "credentials file; in CI use Workload Identity Federation)"
)


def credentials_problem(error: BaseException) -> str | None:
    """A one-line explanation when `error` (or what caused it) is a Google credentials error."""
    try:
        from google.auth import exceptions
    except ImportError:  # pragma: no cover - google-auth is a dependency of every command
        return None
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, exceptions.DefaultCredentialsError):
            return f"no usable Google credentials ({_first_sentence(current)}): {HINT}"
        if isinstance(current, exceptions.RefreshError):
            return f"Google refused the credentials ({_first_sentence(current)}): {HINT}"
        current = current.__cause__ or current.__context__
    return None


def _first_sentence(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    text = text.split(". ")[0].rstrip(".")
    return text if len(text) <= 160 else text[:157] + "..."

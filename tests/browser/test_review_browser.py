"""The review app in a real browser: Debian's chromium, driven by Playwright, against the whole
local pipeline (Orthanc, FHIR server, Pub/Sub server, both functions, the review app).

Covers the worklist order, the study page's image and overlay, accept (and accept again),
a concurrent review's conflict message, replay of a real dead letter until it is processed,
IAP mode in the browser, accessibility (axe-core in the page), keyboard reach, and two
viewports. With REVIEW_SCREENSHOTS_DIR set, the screenshots the README shows are written there.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.browser]
REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 800}
TABLET = {"width": 768, "height": 1024}
# Burned-in text is critical here, so the worklist holds all three priorities.
SETTINGS = {
    "analyzer": "local",
    "rules": [
        {
            "name": "burned-in-text",
            "finding": "burned_in_text",
            "min_score": 0.6,
            "priority": "critical",
        },
        {"name": "blank-image", "finding": "blank_image", "min_score": 0.9, "priority": "urgent"},
    ],
}
RANK = {"critical": 0, "urgent": 1, "routine": 2}

if not CHROMIUM.exists():  # pragma: no cover - bootstrap installs it
    pytest.skip(
        "Debian's chromium is not installed (scripts/bootstrap.sh)", allow_module_level=True
    )


@pytest.fixture(scope="module")
def stack() -> Iterator[Any]:
    """The demo's pipeline with the review app; the processor reaches FHIR through a proxy
    that can fail on demand (to make a real dead letter)."""
    import tempfile

    from imaging_dev.local_pipeline import LocalPipeline
    from imaging_dev.servers.fault_proxy import FaultProxy
    from imaging_dev.servers.fhir_server import FhirServer
    from imaging_dev.synthetic import study_set, write_instances

    with tempfile.TemporaryDirectory() as tmp, FhirServer() as fhir:
        files = write_instances(study_set("browser"), Path(tmp))
        with FaultProxy(fhir.base_url) as proxy:
            pipeline = LocalPipeline(
                SETTINGS,
                environment="browser-test",
                processor_env={"FHIR_BASE_URL": proxy.url},
                review_app=True,
            )
            pipeline.fhir = fhir  # already running: the pipeline's start() leaves it be
            with pipeline:
                pipeline.stage(files)
                results = pipeline.wait_for_results(pipeline.notify(), timeout=180)
                assert all(r.outcome in ("processed", "skipped") for r in results), results
                pipeline.fault_proxy = proxy  # type: ignore[attr-defined]
                pipeline.results = results  # type: ignore[attr-defined]
                yield pipeline


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=DESKTOP, bypass_csp=True)  # CSP off only for axe
    yield context.new_page()
    context.close()


def _screenshot(page: Any, name: str) -> None:
    """A small PNG (palette, at most 1000 px wide) in REVIEW_SCREENSHOTS_DIR, if set."""
    target = os.environ.get("REVIEW_SCREENSHOTS_DIR")
    if not target:
        page.screenshot()  # still proves the page renders
        return
    from PIL import Image

    shot = Image.open(io.BytesIO(page.screenshot(full_page=False)))
    shot.thumbnail((1000, 1000))
    image = shot.convert("P", palette=Image.Palette.ADAPTIVE, colors=96)
    Path(target).mkdir(parents=True, exist_ok=True)
    image.save(Path(target) / f"{name}.png", optimize=True)


def _axe(page: Any) -> list[dict[str, Any]]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "async () => await axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'wcag21aa', "
        "'best-practice']})"
    )
    return [
        {"id": v["id"], "nodes": [n["target"] for n in v["nodes"]][:3]}
        for v in result["violations"]
    ]


def _report_of(stack: Any, predicate: Any) -> str:
    for result in stack.results:
        if result.report and predicate(result):
            return str(result.report).split("/", 1)[1]
    raise AssertionError("no such report in the demo's results")


def test_worklist_shows_the_demo_studies_by_priority(stack: Any, page: Any) -> None:
    base = stack.review_app.url.rstrip("/")
    page.goto(f"{base}/worklist")
    assert page.locator("#local-banner").inner_text().startswith("Local mode, no authentication")
    priorities = page.locator("table.worklist tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.priority)"
    )
    processed = [r for r in stack.results if r.outcome == "processed"]
    assert len(priorities) == len(processed)
    assert [RANK[p] for p in priorities] == sorted(RANK[p] for p in priorities)
    assert {"critical", "urgent", "routine"} <= set(priorities)
    for priority in RANK:
        shown = page.locator(f'.count[data-priority="{priority}"]').inner_text()
        assert int(shown) == sum(r.priority == priority for r in processed)
    # A filter swaps the table in place (htmx) and keeps the URL shareable.
    page.select_option("select[name=priority]", "routine")
    page.wait_for_function("() => location.search.includes('priority=routine')")  # pushState
    page.wait_for_function(
        "() => [...document.querySelectorAll('table.worklist tbody tr')]"
        ".every(r => r.dataset.priority === 'routine')"
    )
    page.goto(f"{base}/worklist")
    _screenshot(page, "worklist")
    assert _axe(page) == []


def test_study_page_shows_the_image_with_its_findings_overlay(stack: Any, page: Any) -> None:
    report = _report_of(stack, lambda r: r.priority == "critical")
    page.goto(f"{stack.review_app.url}reports/{report}")
    image = page.locator("#image")
    page.wait_for_function("() => document.querySelector('#image').naturalWidth > 0")
    assert image.evaluate("img => img.naturalWidth") > 100
    regions = page.locator("svg.overlay rect.region")
    assert regions.count() >= 1
    box = regions.first.bounding_box()
    frame = page.locator(".frame").bounding_box()
    assert box and frame and box["width"] > 10 and box["x"] >= frame["x"] - 1
    assert "burned-in-text" in page.locator("table.findings").inner_text()
    assert page.locator("#no-header").is_visible()  # local mode: no patient header
    _screenshot(page, "study")
    assert _axe(page) == []


def test_ct_window_presets_render_differently(stack: Any, page: Any) -> None:
    report = _report_of(stack, lambda r: r.instance.modality == "CT")
    base = stack.review_app.url.rstrip("/")
    page.goto(f"{base}/reports/{report}")
    sources = page.locator(".presets a").evaluate_all("links => links.map(a => a.textContent)")
    assert sources == ["default", "soft-tissue", "lung", "bone", "brain"]
    src = page.locator("#image").get_attribute("src")
    lung = requests.get(f"{base}{src.replace('preset=default', 'preset=lung')}", timeout=60)
    bone = requests.get(f"{base}{src.replace('preset=default', 'preset=bone')}", timeout=60)
    assert lung.status_code == bone.status_code == 200 and lung.content != bone.content
    page.click("text=lung")
    page.wait_for_url("**preset=lung**")
    page.wait_for_function("() => document.querySelector('#image').naturalWidth > 0")


def _fhir_report(stack: Any, report: str) -> dict[str, Any]:
    return dict(requests.get(f"{stack.fhir.base_url}/DiagnosticReport/{report}", timeout=10).json())


def _provenances(stack: Any, report: str) -> int:
    bundle = requests.get(
        f"{stack.fhir.base_url}/Provenance",
        params={"target": f"DiagnosticReport/{report}"},
        timeout=10,
    ).json()
    return len(bundle.get("entry", []))


def test_accept_writes_fhir_and_a_second_accept_changes_nothing(stack: Any, page: Any) -> None:
    report = _report_of(stack, lambda r: r.priority == "urgent")
    page.goto(f"{stack.review_app.url}reports/{report}")
    page.fill("#comment", "agree")
    page.click("button.accept")
    page.wait_for_selector("text=Saved: the report is now accepted")
    accepted = _fhir_report(stack, report)
    assert accepted["status"] == "final" and _provenances(stack, report) == 1
    page.click("button.accept")
    page.wait_for_selector("#unchanged")
    again = _fhir_report(stack, report)
    assert again["meta"]["versionId"] == accepted["meta"]["versionId"]
    assert _provenances(stack, report) == 1
    page.goto(f"{stack.review_app.url}worklist?review=accepted")
    assert page.locator(f'tr[data-report="{report}"]').count() == 1


def test_concurrent_review_gets_a_clear_message_and_keeps_the_comment(
    stack: Any, browser: Any
) -> None:
    report = _report_of(stack, lambda r: r.priority == "routine")
    url = f"{stack.review_app.url}reports/{report}"
    first = browser.new_context(viewport=DESKTOP).new_page()
    second = browser.new_context(viewport=DESKTOP).new_page()
    first.goto(url)
    second.goto(url)
    first.click("button.accept")
    first.wait_for_selector("text=Saved: the report is now accepted")
    second.fill("#comment", "I disagree: artefact")
    second.click("button.reject")
    conflict = second.wait_for_selector("#conflict")
    assert "Someone else reviewed this report" in conflict.inner_text()
    assert second.input_value("#comment") == "I disagree: artefact"
    assert _fhir_report(stack, report)["status"] == "final"
    first.context.close()
    second.context.close()


def _processed_count(stack: Any, instance_uid: str) -> int:
    return sum(
        1
        for entry in stack.processor.json_logs()
        if entry.get("instance_uid") == instance_uid and entry.get("outcome") == "processed"
    )


def test_replay_moves_a_dead_letter_back_and_it_gets_processed(stack: Any, page: Any) -> None:
    from imaging_cli.store_notifications import publish_notifications, publisher_client
    from imaging_dev.local_pipeline import DEAD_LETTER_TOPIC, NOTIFICATION_TOPIC, STORE

    target = next(r for r in stack.results if r.outcome == "processed")
    uid = target.instance.sop_instance_uid
    before = _processed_count(stack, uid)
    dead_before = len(stack.pubsub.published(DEAD_LETTER_TOPIC))
    stack.fault_proxy.fail_next(100_000, status=503, retry_after=0)  # FHIR is "down"
    publish_notifications(
        [target.instance],
        STORE,
        NOTIFICATION_TOPIC,
        publisher=publisher_client(emulator_host=stack.pubsub.host),
    )
    deadline = time.monotonic() + 120
    while len(stack.pubsub.published(DEAD_LETTER_TOPIC)) == dead_before:
        assert time.monotonic() < deadline, "the event was never dead-lettered"
        time.sleep(0.5)
    stack.fault_proxy.reset()  # FHIR is back

    page.goto(f"{stack.review_app.url}operations")
    row = page.locator("table.letters tbody tr[data-message]")
    assert row.count() == 1 and uid in row.inner_text()
    assert "fhir_unavailable" in row.inner_text()  # the first failure's reason, from the logs
    assert page.locator('tr[data-outcome="processed"]').count() >= 1
    _screenshot(page, "operations")
    assert _axe(page) == []
    row.locator("input[type=checkbox]").check()
    page.click("text=Replay selected")
    assert "Replayed 1 dead letter" in page.wait_for_selector("#replayed").inner_text()
    deadline = time.monotonic() + 60
    while _processed_count(stack, uid) == before:
        assert time.monotonic() < deadline, "the replayed event was not processed"
        time.sleep(0.5)
    page.goto(f"{stack.review_app.url}operations")
    assert page.locator("table.letters tbody tr[data-message]").count() == 0


@pytest.mark.parametrize("viewport", [DESKTOP, TABLET], ids=["1280x800", "tablet-768"])
def test_layout_and_keyboard_at_desktop_and_tablet_width(
    stack: Any, browser: Any, viewport: dict[str, int]
) -> None:
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    report = _report_of(stack, lambda r: r.priority == "critical")
    for path in ("worklist", f"reports/{report}", "operations"):
        page.goto(f"{stack.review_app.url}{path}")
        overflow = page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{path} scrolls sideways at {viewport}"
    # Keyboard only: Tab reaches the review buttons, in order, with a visible focus.
    page.goto(f"{stack.review_app.url}reports/{report}")
    reached = []
    for _ in range(40):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("() => document.activeElement.className"))
        if "reject" in reached[-1]:
            break
    assert "accept" in reached and "reject" in reached
    context.close()


def test_iap_mode_in_the_browser(stack: Any, browser: Any, tmp_path: Path) -> None:
    """The same app in IAP mode: no token or a forged one is 401; a valid one shows the page
    with the patient header (signed-in users only)."""
    from imaging_dev.servers.function_server import FunctionServer
    from tests.support.review import AUDIENCE, ec_key, iap_keys_server, mint

    key = ec_key()
    with iap_keys_server(key) as certs_url:
        env = {
            **stack._review_env(),
            "AUTH_MODE": "iap",
            "IAP_AUDIENCE": AUDIENCE,
            "IAP_CERTS_URL": certs_url,
        }
        with FunctionServer("review_app", env) as app:
            report = _report_of(stack, lambda r: r.priority == "critical")
            url = f"{app.url}reports/{report}"
            anonymous = browser.new_context()
            assert anonymous.new_page().goto(url).status == 401
            anonymous.close()
            forged = browser.new_context(
                extra_http_headers={"x-goog-iap-jwt-assertion": mint(ec_key())}
            )
            assert forged.new_page().goto(url).status == 401
            forged.close()
            signed_in = browser.new_context(
                viewport=DESKTOP, extra_http_headers={"x-goog-iap-jwt-assertion": mint(key)}
            )
            page = signed_in.new_page()
            assert page.goto(url).status == 200
            assert page.locator("section.patient").is_visible()
            assert page.locator("#local-banner").count() == 0
            signed_in.close()
            access = [e for e in app.json_logs() if e.get("event") == "http_request"]
        assert {e["status"] for e in access} >= {200, 401}
        assert all("auth_failure" in e for e in access if e["status"] == 401)

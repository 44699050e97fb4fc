"""`hpo dashboard` on loopback: the HTTP API serves the study, its trials and their artifacts, and a
headless Chromium renders the study's page."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from hpo.cli.dashboard import _is_loopback
from tests.conftest import HIPPOCAMPUS
from tests.export.real_study import real_study
from tests.study.conftest import postgres_url  # noqa: F401 - a fixture: a fresh database per test

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
STARTUP_SECONDS = 60
CHROMIUM = "/usr/bin/chromium"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


def _wait_until_up(process: subprocess.Popen, base: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"hpo dashboard exited with {process.returncode}:\n{log.read_text()}")
        try:
            _get(f"{base}/api/meta")
            return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.3)
    pytest.fail(f"hpo dashboard did not answer within {STARTUP_SECONDS} s:\n{log.read_text()}")


def _start_dashboard(config_path: Path, log: Path, *options: str) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    with open(log, "w") as stream:
        process = subprocess.Popen(
            [sys.executable, "-m", "hpo.cli.main", "dashboard", str(config_path), "--port", str(port), *options],
            stdout=stream, stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(process, base, log)
    except BaseException:
        _stop(process)
        raise
    return process, base


def _stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    if not (HIPPOCAMPUS / "dataset.json").is_file():
        pytest.skip(f"real hippocampus data not found at {HIPPOCAMPUS}")
    return real_study(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def dashboard(trained, tmp_path_factory):
    """`hpo dashboard` serving the session's real study; yields its base URL, the study and the log."""
    log = tmp_path_factory.mktemp("dashboard") / "dashboard.log"
    process, base = _start_dashboard(trained.config_path, log)
    try:
        yield base, trained, log
    finally:
        _stop(process)


def _study_id(base: str, name: str) -> int:
    summaries = json.loads(_get(f"{base}/api/studies"))["study_summaries"]
    ids = [summary["study_id"] for summary in summaries if summary["study_name"] == name]
    assert ids, f"study {name} not listed: {summaries}"
    return ids[0]


def test_dashboard_lists_study_with_attributes(dashboard):
    base, trained, log = dashboard
    summaries = json.loads(_get(f"{base}/api/studies"))["study_summaries"]
    summary = next(item for item in summaries if item["study_name"] == trained.study.study_name)
    attrs = {item["key"]: item["value"] for item in summary["user_attrs"]}
    assert json.loads(attrs["labels"]) == {"0": "background", "1": "Anterior", "2": "Posterior"}
    assert "preprocessing" in attrs
    assert "validation_cases" in attrs
    assert json.loads(_get(f"{base}/api/meta"))["artifact_is_available"] is True
    assert f"{base}/dashboard/studies/{summary['study_id']}" in log.read_text(), "the log names the study's page"


def test_dashboard_serves_trials_and_artifacts(dashboard):
    base, trained, _ = dashboard
    study_id = _study_id(base, trained.study.study_name)
    detail = json.loads(_get(f"{base}/api/studies/{study_id}?after=0"))

    finished = [trial for trial in detail["trials"] if trial["state"] in ("Complete", "Pruned")]
    assert len(finished) == len(trained.study.trials)
    for trial in finished:
        names = {artifact["filename"]: artifact for artifact in trial["artifacts"]}
        assert set(names) == {"best_model.pt", "learning_curve.png", "validation_overlay.png"}
        for name in ("learning_curve.png", "validation_overlay.png"):
            url = f"{base}/artifacts/{study_id}/{trial['trial_id']}/{names[name]['artifact_id']}"
            assert _get(url).startswith(PNG_SIGNATURE), url
        checkpoint = _get(f"{base}/artifacts/{study_id}/{trial['trial_id']}/{names['best_model.pt']['artifact_id']}")
        assert len(checkpoint) > 1000


def test_chromium_renders_study_page(dashboard, tmp_path):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} not installed; .ci/run installs Debian's chromium package")
    base, trained, _ = dashboard
    page = f"{base}/dashboard/studies/{_study_id(base, trained.study.study_name)}"
    flags = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=15000", "--window-size=1280,900",
    ]
    screenshot = tmp_path / "study.png"
    subprocess.run([*flags, f"--screenshot={screenshot}", page], capture_output=True, timeout=120, check=True)
    dom = subprocess.run([*flags, "--dump-dom", page], capture_output=True, text=True, timeout=120, check=True).stdout

    assert screenshot.read_bytes().startswith(PNG_SIGNATURE)
    assert screenshot.stat().st_size > 10_000, "a blank page compresses to a few kilobytes"
    assert f"{trained.study.study_name} (id=" in dom, "the app bar shows the study's name"


def test_dashboard_rejects_port_in_use(dashboard, tmp_path):
    base, trained, _ = dashboard
    port = base.rsplit(":", 1)[1]
    result = subprocess.run(
        [sys.executable, "-m", "hpo.cli.main", "dashboard", str(trained.config_path), "--port", port],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert f"Cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "choose another --port" in result.stderr


@pytest.mark.postgres
def test_dashboard_on_postgres_storage(trained, postgres_url, tmp_path):
    """The study copied into PostgreSQL, served with --storage: trials and artifacts as on SQLite."""
    import optuna

    optuna.copy_study(
        from_study_name=trained.study.study_name, from_storage=trained.storage_url, to_storage=postgres_url,
    )
    process, base = _start_dashboard(trained.config_path, tmp_path / "dashboard.log", "--storage", postgres_url)
    try:
        study_id = _study_id(base, trained.study.study_name)
        trial = json.loads(_get(f"{base}/api/studies/{study_id}?after=0"))["trials"][0]
        overlay = next(item for item in trial["artifacts"] if item["filename"] == "validation_overlay.png")
        image = _get(f"{base}/artifacts/{study_id}/{trial['trial_id']}/{overlay['artifact_id']}")
    finally:
        _stop(process)
    assert image.startswith(PNG_SIGNATURE)
    assert "postgresql+psycopg://" in (tmp_path / "dashboard.log").read_text()


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("::1", True), ("localhost", True), ("0.0.0.0", False), ("192.168.1.5", False), ("dashboard", False)],
)
def test_loopback_detection(host, loopback):
    assert _is_loopback(host) is loopback

"""The Docker deployment: docker-compose.yml validates, publishes ports on loopback only, reserves
GPUs for workers and runs only `hpo` commands that exist. The image runs as an unprivileged user."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hpo.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"


@pytest.fixture(scope="module")
def rendered() -> dict:
    """The compose file as `docker-compose config` renders it with .env.example's values."""
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose not installed; .ci/run installs Debian's docker-compose package")
    result = subprocess.run(
        ["docker-compose", "--env-file", str(ENV_EXAMPLE), "-f", str(COMPOSE_FILE), "config"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )
    assert result.returncode == 0, f"docker-compose config rejected the file:\n{result.stderr}"
    return yaml.safe_load(result.stdout)


def _raw() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def _host_ips(service: dict) -> list[str]:
    """The host address of each published port, from the short ("IP:HOST:CONTAINER") or long syntax."""
    addresses = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            addresses.append(port.get("host_ip", "0.0.0.0"))
        else:
            parts = str(port).split(":")
            addresses.append(parts[0] if len(parts) == 3 else "0.0.0.0")
    return addresses


def test_compose_has_the_three_services(rendered):
    assert set(rendered["services"]) == {"postgres", "dashboard", "worker"}


def test_ports_published_on_loopback_only(rendered):
    for name, service in rendered["services"].items():
        assert all(address == "127.0.0.1" for address in _host_ips(service)), name
    assert _host_ips(rendered["services"]["dashboard"]) == ["127.0.0.1"]
    assert "ports" not in rendered["services"]["worker"], "published ports would clash with --scale"


def test_postgres_has_volume_healthcheck_and_env_credentials(rendered):
    postgres = rendered["services"]["postgres"]
    assert any(volume.startswith("pgdata:/var/lib/postgresql/data") for volume in postgres["volumes"])
    assert "pgdata" in rendered["volumes"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    raw = _raw()["services"]["postgres"]["environment"]
    assert raw["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD"), "the password comes from .env"


def test_worker_reserves_gpu_and_waits_for_database(rendered):
    worker = rendered["services"]["worker"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert any("gpu" in device["capabilities"] for device in devices)
    assert worker["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "container_name" not in worker, "a fixed container name prevents --scale"
    assert any(volume.endswith(":/srv/shared/data:ro") for volume in worker["volumes"])
    assert any(volume.startswith("runs:/srv/hpo/runs") for volume in worker["volumes"])
    assert "@postgres:5432/" in worker["environment"]["HPO_STORAGE"]


def test_dashboard_shares_storage_and_artifacts_with_workers(rendered):
    dashboard, worker = rendered["services"]["dashboard"], rendered["services"]["worker"]
    assert dashboard["environment"]["HPO_STORAGE"] == worker["environment"]["HPO_STORAGE"]
    assert set(dashboard["volumes"]) == set(worker["volumes"]), "the artifact folder lives in the shared runs volume"


def _hpo_commands() -> list[tuple[str, list[str]]]:
    commands = []
    for name, service in _raw()["services"].items():
        command = service.get("command")
        if command and command[0] == "hpo":
            commands.append((name, [str(part) for part in command[1:]]))
    return commands


def test_compose_runs_hpo_commands():
    assert {name for name, _ in _hpo_commands()} == {"dashboard", "worker"}


@pytest.mark.parametrize(("service", "arguments"), _hpo_commands(), ids=[name for name, _ in _hpo_commands()])
def test_compose_commands_exist_in_cli(service, arguments):
    result = subprocess.run(
        [sys.executable, "-m", "hpo.cli.main", arguments[0], "--help"], capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, f"{service}: 'hpo {arguments[0]}' is not a command:\n{result.stderr}"
    resolved = [re.sub(r"\$\{[^}]*\}", "study.yaml", part) for part in arguments]
    parsed = build_parser().parse_args(resolved)  # exits (SystemExit) on an unknown option
    assert parsed.command == arguments[0]


def test_env_example_defines_required_variables():
    text = COMPOSE_FILE.read_text()
    without_default = set(re.findall(r"\$\{(\w+)\}", text)) | set(re.findall(r"\$\{(\w+):\?", text))
    defined = {line.split("=", 1)[0] for line in ENV_EXAMPLE.read_text().splitlines() if "=" in line and not line.startswith("#")}
    assert without_default <= defined, f"missing from .env.example: {sorted(without_default - defined)}"


def test_dockerfile_runs_as_unprivileged_user_on_cuda_base():
    lines = [line.strip() for line in DOCKERFILE.read_text().splitlines()]
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0"), "the last USER must not be root"
    base = next(line for line in lines if line.startswith("ARG BASE_IMAGE="))
    assert "cuda" in base
    assert any(line.startswith("RUN pip install") for line in lines), "the image installs the package"


def test_dockerignore_keeps_secrets_and_outputs_out():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".env", ".venv", "runs", ".git"} <= ignored

"""Smoke tests of the benchmark scripts: each prints its --help, and the quick modes run and write a results file.

No benchmark figure is checked here: the figures depend on the machine and its load.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import HIPPOCAMPUS

BENCH = Path(__file__).resolve().parents[2] / "bench"
SCRIPTS = ["throughput.py", "pruning.py", "storage_scaling.py", "gpu.py"]


def run_script(name: str, *arguments: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(BENCH / name), *arguments], capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.parametrize("name", SCRIPTS)
def test_script_help(name: str) -> None:
    completed = run_script(name, "--help")

    assert completed.returncode == 0, completed.stderr
    assert "--out" in completed.stdout
    assert "--quick" in completed.stdout


def test_storage_scaling_quick(tmp_path: Path) -> None:
    out = tmp_path / "storage.json"

    completed = run_script("storage_scaling.py", "--quick", "--out", str(out))

    assert completed.returncode == 0, completed.stderr
    document = json.loads(out.read_text())
    assert set(document["results"]["sqlite"]) == {"1", "2"}
    assert document["results"]["sqlite"]["1"]["trials_per_second"] > 0
    assert "load average" in document["load"]


def test_throughput_quick(tmp_path: Path) -> None:
    if not (HIPPOCAMPUS / "dataset.json").is_file():
        pytest.skip(f"real hippocampus data not found at {HIPPOCAMPUS}")
    out = tmp_path / "throughput.json"

    completed = run_script("throughput.py", "--quick", "--cache-dir", str(tmp_path / "cache"), "--out", str(out))

    assert completed.returncode == 0, completed.stderr
    results = json.loads(out.read_text())["results"]
    assert results["hpo"]["steps_per_second"] > 0
    assert results["reference"]["steps_per_second"] > 0
    assert "ratio_hpo_to_reference" in results


def test_gpu_without_cuda_exits_clearly() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is visible, so the script would run the full benchmark")

    completed = run_script("gpu.py")

    assert completed.returncode == 1
    assert "no CUDA GPU is visible" in completed.stderr
    assert "--device cpu --quick" in completed.stderr

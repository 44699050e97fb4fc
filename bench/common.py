"""Helpers shared by the benchmark scripts: the machine's description, statistics and result files."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
HIPPOCAMPUS = REPOSITORY.parent / "shared" / "data" / "hippocampus-mri"
RESULTS_DIR = REPOSITORY / "bench" / "results"
DEFAULT_CACHE = REPOSITORY / "runs" / "cache"


def load_average() -> str:
    """Return the output of `uptime`, because other processes on a shared machine change every figure."""
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return " ".join(f"{value:.2f}" for value in os.getloadavg())


def machine() -> dict:
    """CPU model, core count, memory and the versions of the libraries that set the speed."""
    info = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    for module in ("torch", "monai", "optuna", "sqlalchemy", "numpy"):
        if module in sys.modules:
            info[module] = getattr(sys.modules[module], "__version__", "?")
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def percentile(values: list[float], q: float) -> float:
    """Return the q-th percentile (0-100) with linear interpolation, or NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    lower = int(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def write_results(path: Path, benchmark: str, command: list[str], settings: dict, results: dict) -> Path:
    """Write one benchmark's settings, figures, machine and load to a JSON file and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": benchmark,
        "command": " ".join(["python", *command]),
        "finished": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": machine(),
        "load": load_average(),
        "settings": settings,
        "results": results,
    }
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    return path


def require_hippocampus(path: Path) -> None:
    """Exit with a readable message when the hippocampus dataset is missing."""
    if not (Path(path) / "dataset.json").is_file():
        sys.exit(
            f"error: hippocampus dataset not found at {path} (no dataset.json); pass --data DIR "
            "pointing at the Medical Segmentation Decathlon Task04_Hippocampus folder, or fetch it with "
            "'hpo data download Task04_Hippocampus --out data/'."
        )

"""`hpo run --workers N`: start N `hpo worker` processes on one study and supervise them.

The launcher checks the config, the data (building the preprocessing cache once) and the storage
before any worker starts, so such errors show once. Each worker is pinned to one GPU through
`CUDA_VISIBLE_DEVICES`, round-robin when there are more workers than GPUs, and gets an equal share
of the CPU cores for torch. Worker output is relayed line by line with a `[worker I]` prefix.

A worker that exits with an `HpoError` (status 2: config, data or storage) stops all the others at
once. A worker that dies otherwise (killed, crashed) leaves the others running: they fail its trial
after the heartbeat grace period and run its parameters again. On SIGINT or SIGTERM the launcher
sends SIGTERM to every worker, each ends its trial and exits, and a second signal kills them.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from hpo.config.loader import study_dir
from hpo.config.schema import StudyConfig
from hpo.errors import ConfigError
from hpo.study.interrupt import LAUNCHER_PID_VARIABLE, STOP_SIGNALS
from hpo.study.storage import STORAGE_ENVIRONMENT_VARIABLE, mask_url, resolve_storage_url

logger = logging.getLogger(__name__)

HPO_ERROR_STATUS = 2  # the exit status of `hpo` for an HpoError
INTERRUPTED_STATUS = 130
STOP_TIMEOUT_SECONDS = 60.0  # how long workers may take to end their trials after SIGTERM
POLL_SECONDS = 0.2


@dataclass(frozen=True)
class WorkerSpec:
    """How to start one worker: its index, command line, extra environment and GPU."""

    index: int
    command: list[str]
    environment: dict[str, str]
    gpu: str | None


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def visible_gpus(requested: str | None, device: str) -> list[str]:
    """Return the GPU ids to pin workers to: `--gpus`, else those CUDA already shows this process, else none."""
    if requested is not None:
        gpus = [gpu.strip() for gpu in requested.split(",") if gpu.strip()]
        if not gpus:
            raise ConfigError(f"--gpus must list GPU ids such as 0,1 but got '{requested}'.")
        return gpus
    if device == "cpu":
        return []
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [gpu.strip() for gpu in listed.split(",") if gpu.strip() and gpu.strip() != "-1"]
    import torch

    return [str(index) for index in range(torch.cuda.device_count())]


def threads_per_worker(workers: int) -> int:
    return max(1, available_cpus() // workers)


def plan_workers(
    config_path: str | Path, workers: int, gpus: list[str], storage_url: str,
    n_trials: int | None = None, timeout: float | None = None, verbose: bool = False,
) -> list[WorkerSpec]:
    """Plan one `WorkerSpec` per worker, with GPUs taken round-robin and CPU threads split evenly."""
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1 but got {workers}.")
    threads = threads_per_worker(workers)
    specs = []
    for index in range(workers):
        command = [sys.executable, "-m", "hpo.cli.main", *(["-v"] if verbose else []), "worker", str(config_path)]
        command += ["--threads", str(threads)]
        if n_trials is not None:
            command += ["--n-trials", str(n_trials)]
        if timeout is not None:
            command += ["--timeout", str(timeout)]
        # The URL travels in the environment, not on the command line, where `ps` would show its password.
        environment = {
            STORAGE_ENVIRONMENT_VARIABLE: storage_url,
            LAUNCHER_PID_VARIABLE: str(os.getpid()),
            "OMP_NUM_THREADS": str(threads),
            "MKL_NUM_THREADS": str(threads),
            "PYTHONUNBUFFERED": "1",
        }
        gpu = gpus[index % len(gpus)] if gpus else None
        if gpu is not None:
            environment["CUDA_VISIBLE_DEVICES"] = gpu
        specs.append(WorkerSpec(index, command, environment, gpu))
    return specs


def prepare_study(config: StudyConfig, storage: str | None) -> str:
    """Check the data (building its cache) and create the study once, before any worker starts.
    Returns the storage URL the workers use."""
    from hpo.data.study_data import load_study_data
    from hpo.study.runner import open_study

    load_study_data(config.data, config.model.spatial_dims)
    handle = open_study(config, storage)
    handle.storage.engine.dispose()
    return resolve_storage_url(storage, config.study.storage, study_dir(config))


def launch(
    config_path: str | Path, config: StudyConfig, workers: int, gpus: str | None = None, storage: str | None = None,
    n_trials: int | None = None, timeout: float | None = None, verbose: bool = False,
) -> int:
    """Run `workers` worker processes on the study until they all exit. Returns 0 when every worker
    finished, 2 when one stopped on an HpoError, 130 when stopped by a signal, else 1."""
    url = prepare_study(config, storage)
    devices = visible_gpus(gpus, config.training.device)
    specs = plan_workers(config_path, workers, devices, url, n_trials, timeout, verbose)
    where = f"GPUs {', '.join(devices)}" if devices else f"the CPU ({threads_per_worker(workers)} threads each)"
    logger.info("Starting %d workers on %s, study storage %s", workers, where, mask_url(url))
    return Supervisor(specs).run()


@dataclass
class _Running:
    spec: WorkerSpec
    process: subprocess.Popen
    pumps: list[threading.Thread] = field(default_factory=list)
    status: int | None = None


class Supervisor:
    """Starts the workers, relays their output and decides what to do when one exits or a signal arrives."""

    def __init__(self, specs: list[WorkerSpec]) -> None:
        self.specs = specs
        self.running: list[_Running] = []
        self.signals: list[str] = []
        self.stopping_since: float | None = None
        self.fatal = False
        self.failed = False
        self._output_lock = threading.Lock()

    def run(self) -> int:
        previous = {number: signal.signal(number, self._handle) for number in STOP_SIGNALS}
        try:
            for spec in self.specs:
                self._start(spec)
            while any(worker.status is None for worker in self.running):
                self._step()
                time.sleep(POLL_SECONDS)
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)
            for worker in self.running:
                for pump in worker.pumps:
                    pump.join(timeout=5)
        return self._exit_status()

    def _handle(self, number: int, frame) -> None:
        del frame
        self.signals.append(signal.Signals(number).name)

    def _start(self, spec: WorkerSpec) -> None:
        # A new session keeps the terminal's Ctrl-C from reaching the workers directly, so each
        # gets exactly one SIGTERM, from here.
        process = subprocess.Popen(
            spec.command, env={**os.environ, **spec.environment}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, errors="replace", bufsize=1, start_new_session=True,
        )
        worker = _Running(spec, process)
        for stream, target in ((process.stdout, sys.stdout), (process.stderr, sys.stderr)):
            pump = threading.Thread(target=self._relay, args=(spec.index, stream, target), daemon=True)
            pump.start()
            worker.pumps.append(pump)
        self.running.append(worker)
        gpu = f" on GPU {spec.gpu}" if spec.gpu is not None else ""
        logger.info("Worker %d started%s (process %d)", spec.index, gpu, process.pid)

    def _relay(self, index: int, stream: IO[str], target: IO[str]) -> None:
        for line in stream:
            with self._output_lock:
                target.write(f"[worker {index}] {line}")
                target.flush()

    def _step(self) -> None:
        if self.signals and self.stopping_since is None:
            logger.warning("%s received: stopping every worker (send it again to kill them)", self.signals[0])
            self._stop_all()
        overdue = self.stopping_since is not None and time.monotonic() - self.stopping_since > STOP_TIMEOUT_SECONDS
        if len(self.signals) > 1 or overdue:
            self._kill_all()
        for worker in self.running:
            if worker.status is None and worker.process.poll() is not None:
                worker.status = worker.process.returncode
                self._on_exit(worker)

    def _on_exit(self, worker: _Running) -> None:
        index, status = worker.spec.index, worker.status
        if status == 0:
            logger.info("Worker %d finished", index)
            return
        if status == HPO_ERROR_STATUS:
            logger.error("Worker %d stopped on an error (above); stopping the other workers", index)
            self.fatal = True
            self._stop_all()
            return
        if self.stopping_since is not None:
            logger.info("Worker %d stopped (exit status %d)", index, status)
            return

        self.failed = True
        how = f"was killed by {signal.Signals(-status).name}" if status < 0 else f"exited with status {status}"
        logger.error(
            "Worker %d %s; the other workers go on, and its trial runs again once its heartbeat is stale",
            index, how,
        )

    def _stop_all(self) -> None:
        if self.stopping_since is None:
            self.stopping_since = time.monotonic()
        for worker in self.running:
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)

    def _kill_all(self) -> None:
        for worker in self.running:
            if worker.process.poll() is None:
                logger.warning("Killing worker %d", worker.spec.index)
                worker.process.kill()

    def _exit_status(self) -> int:
        if self.fatal:
            return HPO_ERROR_STATUS
        if self.signals:
            return INTERRUPTED_STATUS
        if self.failed:
            return 1
        return 0

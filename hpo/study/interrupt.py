"""Stopping a worker cleanly on SIGTERM or Ctrl-C.

The first SIGTERM or SIGINT requests a stop. If a trial is training at that moment, the
signal handler raises `WorkerInterrupted` inside it, so the trial ends at once as FAIL with the
reason recorded, and the worker queues its parameters again before it exits. Outside training
(while Optuna writes to the storage) the handler only records the request, so that no storage
write is cut in half; the worker checks it before the next trial. A second signal stops the
worker at once, leaving its trial for the heartbeat check to clean up.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# Set by `hpo run --workers` in the environment of each worker it starts: the launcher's process id.
LAUNCHER_PID_VARIABLE = "HPO_LAUNCHER_PID"
POLL_SECONDS = 0.2


class WorkerInterrupted(Exception):
    """A stop signal arrived while a trial was training: the trial ends, then the worker."""


class StopRequested(KeyboardInterrupt):
    """Raised by the worker loop once it has ended its trial after a stop signal."""


class StopSignals:
    """Receives SIGINT and SIGTERM while installed (as a context manager) in the main thread."""

    def __init__(self) -> None:
        self.received: str | None = None
        self._in_trial = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for number in STOP_SIGNALS:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc_info) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()

    def _handle(self, number: int, frame) -> None:
        del frame
        name = signal.Signals(number).name
        if self.received is not None:
            logger.warning("%s received again: stopping at once", name)
            raise KeyboardInterrupt(name)

        self.received = name
        logger.warning("%s received: ending the running trial, then stopping (send it again to stop at once)", name)
        if self._in_trial:
            raise WorkerInterrupted(f"{name} received while training; the worker was stopped")

    @contextmanager
    def trial_window(self) -> Iterator[None]:
        """Let a stop signal interrupt the code inside, which must be safe to abandon at any line."""
        if self.received is not None:
            raise WorkerInterrupted(f"{self.received} received before training began; the worker was stopped")
        self._in_trial = True
        try:
            yield
        finally:
            self._in_trial = False

    def wait(self, seconds: float) -> None:
        """Sleep for `seconds`, returning early when a stop signal arrives."""
        deadline = time.monotonic() + seconds
        while self.received is None and time.monotonic() < deadline:
            time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))


def stop_when_parent_exits(parent_pid: int, interval: float = 1.0) -> None:
    """Send this process SIGTERM once `parent_pid` is no longer its parent, so that workers started
    by `hpo run --workers` stop cleanly when the launcher itself is killed."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(interval)
        logger.warning("The launcher (process %d) exited; stopping this worker", parent_pid)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()

"""Worker scaling and storage overhead: trials per second and per-call latency with 1 to 16 processes.

Each worker process opens the storage with `hpo.study.storage.open_storage` (the engine settings
hpo uses), loads one shared study with a seeded random sampler and Optuna's median pruner, and
runs a cheap objective through the ask-and-tell interface until the measuring window closes:

- start a trial (`study.ask`) and sample one float;
- 20 times: `trial.report(value, step)` then `trial.should_prune()`. The pruner's decision is
  counted but not acted on, so every trial does the same work;
- finish it (`study.tell`);
- count the finished trials, as hpo's worker loop does before every trial
  (`hpo.study.runner.count_trials`).

Every call is timed. Trials per second are the intermediate values reported inside the window by
all workers, divided by the values per trial. Counting only whole trials would round the figure
down to nothing when 16 slow workers each finish less than one trial in the window.
The script also records how busy the machine's CPUs were during the window (from /proc/stat,
which includes other users' processes) and the CPU time the worker processes spent per trial.

SQLite runs use a fresh file in write-ahead-log mode, one per measurement. PostgreSQL runs use a
database created for this run and dropped at its end, with a fresh study per measurement. The two
backends take turns for each worker count, so their ratio is measured side by side.

    python bench/storage_scaling.py                      # about 6 minutes
    python bench/storage_scaling.py --quick              # a few seconds, SQLite only
    python bench/storage_scaling.py --server postgresql+psycopg://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

from common import RESULTS_DIR, load_average, median, percentile, write_results

OPERATIONS = ("ask", "report", "should_prune", "tell", "count_trials")
DEFAULT_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8, 16], help="worker process counts")
    parser.add_argument("--backends", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite", "postgresql"])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each measuring window")
    parser.add_argument("--repeats", type=int, default=3, help="windows per worker count and backend (median reported)")
    parser.add_argument("--steps", type=int, default=20, help="intermediate values reported per trial")
    parser.add_argument(
        "--server", default=DEFAULT_SERVER,
        help="PostgreSQL URL of an existing database to connect to; the script creates and drops its own database there",
    )
    parser.add_argument("--quick", action="store_true", help="1 and 2 workers, 1 s windows, SQLite only")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "storage_scaling.json", help="results file (JSON)")
    arguments = parser.parse_args(argv)
    if arguments.quick:
        arguments.workers, arguments.seconds, arguments.repeats, arguments.backends = [1, 2], 1.0, 1, ["sqlite"]
    return arguments


def cpu_busy_jiffies() -> tuple[int, int]:
    """(busy, total) CPU time counters of the whole machine from /proc/stat; (0, 0) where it is missing."""
    try:
        fields = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return 0, 0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def worker(url: str, study_name: str, index: int, seconds: float, steps: int, barrier, queue) -> None:
    """Run cheap trials for `seconds` after every worker is ready; send the timings to `queue`."""
    import optuna

    from hpo.study.runner import FINISHED_STATES, count_trials
    from hpo.study.storage import open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(
        study_name=study_name, storage=open_storage(url), sampler=optuna.samplers.RandomSampler(seed=index),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=5),
    )
    latencies: dict[str, list[float]] = {name: [] for name in OPERATIONS}
    reports_in_window = 0
    would_prune = 0
    barrier.wait()
    cpu_started = time.process_time()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        tick = time.perf_counter()
        trial = study.ask()
        x = trial.suggest_float("x", 0.0, 1.0)
        latencies["ask"].append(time.perf_counter() - tick)
        for step in range(steps):
            tick = time.perf_counter()
            trial.report(x * (1.0 - 0.5 ** (step + 1)), step)
            latencies["report"].append(time.perf_counter() - tick)
            reports_in_window += time.monotonic() <= deadline
            tick = time.perf_counter()
            would_prune += trial.should_prune()
            latencies["should_prune"].append(time.perf_counter() - tick)
        tick = time.perf_counter()
        study.tell(trial, x)
        latencies["tell"].append(time.perf_counter() - tick)
        tick = time.perf_counter()
        count_trials(study, FINISHED_STATES)
        latencies["count_trials"].append(time.perf_counter() - tick)
    queue.put({
        "reports": reports_in_window, "trials": len(latencies["tell"]), "would_prune": would_prune, "latencies": latencies,
        "cpu_seconds": time.process_time() - cpu_started,
    })


def measure_once(url: str, workers: int, arguments: argparse.Namespace) -> dict:
    """Measure one window with `workers` processes on a fresh study: trials per second and every call's latency."""
    import optuna

    from hpo.study.storage import open_storage

    study_name = f"bench-{workers}-{uuid.uuid4().hex[:8]}"
    storage = open_storage(url)
    optuna.create_study(study_name=study_name, storage=storage, direction="maximize")
    storage.engine.dispose()  # no pooled connection may be inherited by the forked workers
    del storage

    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(workers + 1)
    queue = context.Queue()
    processes = [
        context.Process(target=worker, args=(url, study_name, index, arguments.seconds, arguments.steps, barrier, queue))
        for index in range(workers)
    ]
    for process in processes:
        process.start()
    barrier.wait()
    busy_before, total_before = cpu_busy_jiffies()
    reports = [queue.get() for _ in processes]
    busy_after, total_after = cpu_busy_jiffies()
    for process in processes:
        process.join()
    failed = [process.exitcode for process in processes if process.exitcode != 0]
    if failed:
        raise RuntimeError(f"{len(failed)} of {workers} worker processes failed with exit codes {failed}")

    trials = sum(report["reports"] for report in reports) / arguments.steps
    total_ticks = max(total_after - total_before, 1)
    return {
        "trials_per_second": trials / arguments.seconds,
        "trials": trials,
        "would_prune": sum(report["would_prune"] for report in reports),
        "machine_cpu_busy": (busy_after - busy_before) / total_ticks,
        "worker_cpu_seconds_per_trial": sum(report["cpu_seconds"] for report in reports) / max(sum(report["trials"] for report in reports), 1),
        "latencies": {name: [value for report in reports for value in report["latencies"][name]] for name in OPERATIONS},
        "load": load_average(),
    }


def summarise(windows: list[dict]) -> dict:
    """Medians over the windows of one configuration; latency percentiles pool every call of every window."""
    summary = {
        "trials_per_second": round(median([window["trials_per_second"] for window in windows]), 2),
        "raw_trials_per_second": [round(window["trials_per_second"], 2) for window in windows],
        "machine_cpu_busy": round(median([window["machine_cpu_busy"] for window in windows]), 3),
        "worker_cpu_ms_per_trial": round(1000 * median([window["worker_cpu_seconds_per_trial"] for window in windows]), 1),
        "loads": [window["load"] for window in windows],
    }
    for name in OPERATIONS:
        values = [value for window in windows for value in window["latencies"][name]]
        summary[f"{name}_ms_median"] = round(1000 * median(values), 2)
        summary[f"{name}_ms_p95"] = round(1000 * percentile(values, 95), 2)
    return summary


def run_all(urls: dict, arguments: argparse.Namespace) -> dict[str, dict[int, list[dict]]]:
    """Measure every backend and worker count `repeats` times, alternating the backends within each
    worker count and cycling through the counts, so that drifts in load spread over all of them."""
    windows = {backend: {workers: [] for workers in arguments.workers} for backend in urls}
    for repeat in range(arguments.repeats):
        for workers in arguments.workers:
            order = list(urls) if repeat % 2 == 0 else list(reversed(urls))
            for backend in order:
                window = measure_once(urls[backend](), workers, arguments)
                windows[backend][workers].append(window)
                print(
                    f"{backend:<10} {workers:>2} workers, repeat {repeat + 1}: {window['trials_per_second']:7.2f} trials/s, "
                    f"CPU busy {window['machine_cpu_busy']:.0%}  ({window['load']})",
                    flush=True,
                )
    return windows


def paired_ratios(windows: dict[str, dict[int, list[dict]]]) -> dict:
    """Median over repeats of SQLite's trials per second divided by PostgreSQL's, per worker count."""
    if set(windows) != {"sqlite", "postgresql"}:
        return {}
    ratios = {}
    for workers, sqlite_windows in windows["sqlite"].items():
        pairs = zip(sqlite_windows, windows["postgresql"][workers])
        values = [a["trials_per_second"] / b["trials_per_second"] for a, b in pairs if b["trials_per_second"] > 0]
        ratios[str(workers)] = round(median(values), 2)
    return ratios


def print_table(backend: str, summary: dict) -> None:
    print(f"\n{backend}: medians over repeats; latencies in ms (median / p95)")
    print(f"{'workers':>7} {'trials/s':>9} {'CPU busy':>9} {'ask':>13} {'report':>13} {'should_prune':>13} {'tell':>13} {'count_trials':>13}")
    for workers, row in summary.items():
        cells = " ".join(f"{row[f'{name}_ms_median']:>6.2f}/{row[f'{name}_ms_p95']:<6.2f}" for name in OPERATIONS)
        print(f"{workers:>7} {row['trials_per_second']:>9.2f} {row['machine_cpu_busy']:>9.0%} {cells}")


class PostgresDatabase:
    """A database created on the server for this run and dropped (even after an error) on exit."""

    def __init__(self, server_url: str) -> None:
        from sqlalchemy.engine import make_url

        self.server = make_url(server_url)
        self.name = f"hpo_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"

    def _execute(self, statement: str) -> None:
        import psycopg

        parameters = self.server.translate_connect_args(username="user", database="dbname")
        with psycopg.connect(**parameters, autocommit=True) as connection:
            connection.execute(statement)

    def __enter__(self) -> str:
        self._execute(f'CREATE DATABASE "{self.name}"')
        return self.server.set(database=self.name).render_as_string(hide_password=False)

    def __exit__(self, *exc_info) -> None:
        self._execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    import optuna

    import hpo.study.runner  # noqa: F401  imported once here (it loads torch), so forked workers inherit it
    from hpo.study.storage import mask_url

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="hpo-bench-") as folder, contextlib.ExitStack() as stack:
        counter = iter(range(10**6))
        urls = {}
        if "sqlite" in arguments.backends:
            urls["sqlite"] = lambda: f"sqlite:///{folder}/study-{next(counter)}.db"
        if "postgresql" in arguments.backends:
            print(f"PostgreSQL: a temporary database on {mask_url(arguments.server)}", flush=True)
            database_url = stack.enter_context(PostgresDatabase(arguments.server))
            urls["postgresql"] = lambda: database_url
        windows = run_all(urls, arguments)
    results: dict = {
        backend: {str(workers): summarise(found) for workers, found in by_workers.items()}
        for backend, by_workers in windows.items()
    }
    for backend, summary in results.items():
        print_table(backend, summary)
    results["sqlite_to_postgresql_ratio"] = paired_ratios(windows)
    if results["sqlite_to_postgresql_ratio"]:
        print(f"\ntrials/s ratio SQLite / PostgreSQL by workers (median of paired windows): {results['sqlite_to_postgresql_ratio']}")

    settings = {key: (str(value) if isinstance(value, Path) else value) for key, value in vars(arguments).items()}
    settings["server"] = mask_url(arguments.server)
    path = write_results(arguments.out, "storage_scaling", sys.argv, settings, results)
    print(f"\nresults written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

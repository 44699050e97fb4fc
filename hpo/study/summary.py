"""Study summaries for people (a table) and for scripts (one JSON object)."""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import TrialState

STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")


def summarise(study: optuna.Study) -> dict[str, Any]:
    """Return the study's name, its trials counted by state, and its best trial (None before one completes)."""
    trials = study.get_trials(deepcopy=False)
    counts = {state: 0 for state in STATES}
    for trial in trials:
        counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
    return {
        "study_name": study.study_name,
        "n_trials": len(trials),
        "n_trials_by_state": counts,
        "best_trial": _best_trial(study),
        "trials": [_trial_row(trial) for trial in trials],
        "user_attrs": study.user_attrs,
    }


def _trial_row(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    return {
        "number": trial.number,
        "state": trial.state.name,
        "value": trial.value,
        "epochs_run": trial.user_attrs.get("epochs_run"),
        "params": trial.params,
        "failure_reason": trial.user_attrs.get("failure_reason"),
    }


def _best_trial(study: optuna.Study) -> dict[str, Any] | None:
    completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not completed:
        return None
    best = study.best_trial
    return {"number": best.number, "value": best.value, "params": best.params, "user_attrs": best.user_attrs}


def format_summary(summary: dict[str, Any]) -> str:
    """Format a plain-text report: trial counts, then the best trial's parameters, Dice and checkpoint."""
    counts = ", ".join(f"{state} {count}" for state, count in summary["n_trials_by_state"].items())
    lines = [f"Study {summary['study_name']}: {summary['n_trials']} trials ({counts})"]
    lines.extend(format_trials(summary.get("trials", [])))
    best = summary["best_trial"]
    if best is None:
        lines.append("No trial has completed yet.")
        return "\n".join(lines)

    attrs = best["user_attrs"]
    rows = [("best trial", str(best["number"])), ("mean validation Dice", f"{best['value']:.4f}")]
    for name, value in attrs.get("dice_per_structure", {}).items():
        rows.append((f"  Dice {name}", f"{value:.4f}"))
    for name, value in attrs.get("hd95_per_structure", {}).items():
        rows.append((f"  HD95 {name} (voxels)", f"{value:.2f}"))
    rows.append(("best epoch", f"{attrs.get('best_epoch', '?')} of {attrs.get('epochs_run', '?')} run"))
    rows.append(("parameters", ""))
    for name, value in best["params"].items():
        rows.append((f"  {name}", f"{value:.4g}" if isinstance(value, float) else str(value)))
    rows.append(("checkpoint", attrs.get("checkpoint", "(none recorded)")))
    width = max(len(label) for label, _ in rows)
    lines.extend(f"{label:<{width}}  {value}" for label, value in rows)
    return "\n".join(lines)


def format_trials(rows: list[dict[str, Any]], limit: int = 30) -> list[str]:
    """Format one line per trial (the last `limit` of them): number, state, value, epochs and parameters."""
    if not rows:
        return []
    lines = ["", "  #  state     Dice    epochs  parameters"]
    if len(rows) > limit:
        lines.append(f"  ... {len(rows) - limit} earlier trials not shown")
    for row in rows[-limit:]:
        value = f"{row['value']:.4f}" if row["value"] is not None else "   -  "
        epochs = row["epochs_run"] if row["epochs_run"] is not None else "-"
        shown = ", ".join(f"{name}={value:.3g}" if isinstance(value, float) else f"{name}={value}" for name, value in row["params"].items())
        reason = f"  ({row['failure_reason']})" if row.get("failure_reason") else ""
        lines.append(f"{row['number']:>3}  {row['state']:<8}  {value}  {epochs!s:>6}  {shown}{reason}")
    lines.append("")
    return lines

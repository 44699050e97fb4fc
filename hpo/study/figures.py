"""PNG figures of one trial for the dashboard: its learning curve and validation overlays.

Figures are drawn with matplotlib's Agg canvas directly, without pyplot, so that workers keep no
global figure state and need no display.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# Colours for label values 1, 2, ... (RGB); background stays transparent.
LABEL_COLOURS = (
    (0.90, 0.10, 0.10), (0.10, 0.60, 0.95), (0.95, 0.80, 0.10), (0.20, 0.80, 0.30),
    (0.80, 0.30, 0.90), (1.00, 0.55, 0.00), (0.00, 0.80, 0.80), (0.60, 0.40, 0.20),
)
OVERLAY_ALPHA = 0.45
MAX_OVERLAY_CASES = 3


def _new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def write_learning_curve(
    train_losses: list[float], mean_dices: list[float], best_epoch: int, path: Path, title: str = ""
) -> Path:
    """Draw training loss (left axis) and mean validation Dice (right axis) per epoch into a PNG."""
    figure = _new_figure(6.4, 4.0)
    loss_axis = figure.add_subplot(1, 1, 1)
    epochs = np.arange(1, len(train_losses) + 1)
    loss_axis.plot(epochs, train_losses, color="tab:blue", marker="o", label="training loss")
    loss_axis.set_xlabel("epoch")
    loss_axis.set_ylabel("training loss", color="tab:blue")
    loss_axis.set_xticks(epochs if len(epochs) <= 20 else np.linspace(1, len(epochs), 10, dtype=int))

    dice_axis = loss_axis.twinx()
    dice_axis.plot(np.arange(1, len(mean_dices) + 1), mean_dices, color="tab:red", marker="s", label="validation Dice")
    dice_axis.set_ylabel("mean validation Dice", color="tab:red")
    dice_axis.set_ylim(0.0, 1.0)
    if best_epoch >= 1:
        dice_axis.axvline(best_epoch, color="grey", linestyle="--", linewidth=1)
        dice_axis.annotate(f"best epoch {best_epoch}", (best_epoch, 0.02), color="grey", fontsize=8)
    figure.suptitle(title or "Learning curve")
    figure.tight_layout()
    figure.savefig(path, format="png")
    return path


def write_overlay(
    images: list[np.ndarray], labels: list[np.ndarray], predictions: list[np.ndarray],
    case_ids: list[str], label_names: dict[int, str], path: Path, title: str = "",
) -> Path:
    """Draw a few validation cases as rows of image, ground truth and prediction side by side.

    Each 3D case is shown at the axial slice (last axis) with the most labelled voxels in its
    ground truth. Images are [C, *spatial] arrays, and the first channel is shown.
    """
    count = min(len(images), len(predictions), MAX_OVERLAY_CASES)
    figure = _new_figure(9.0, 3.0 * max(count, 1) + 0.6)
    if count == 0:
        figure.text(0.5, 0.5, "no validation predictions", ha="center")
        figure.savefig(path, format="png")
        return path

    for row in range(count):
        image, label, prediction = images[row][0], labels[row], predictions[row]
        index = _busiest_slice(label)
        panels = (
            ("image", None),
            ("ground truth", _slice(label, index)),
            ("prediction", _slice(prediction, index)),
        )
        background = _slice(image, index)
        for column, (name, overlay) in enumerate(panels):
            axis = figure.add_subplot(count, 3, row * 3 + column + 1)
            axis.imshow(background.T, cmap="gray", origin="lower", interpolation="nearest")
            if overlay is not None:
                axis.imshow(_colour(overlay).transpose(1, 0, 2), origin="lower", interpolation="nearest")
            where = f" z={index}" if index is not None else ""
            axis.set_title(f"{case_ids[row]}{where}: {name}" if column == 0 else name, fontsize=9)
            axis.set_axis_off()
    _add_legend(figure, label_names)
    figure.suptitle(title or "Validation cases at the best epoch")
    figure.tight_layout(rect=(0, 0.04, 1, 1))
    figure.savefig(path, format="png")
    return path


def _busiest_slice(label: np.ndarray) -> int | None:
    """Return the index along the last axis with the most labelled voxels, or None for a 2D label map."""
    if label.ndim == 2:
        return None
    per_slice = (label > 0).reshape(-1, label.shape[-1]).sum(axis=0)
    return int(np.argmax(per_slice)) if per_slice.any() else label.shape[-1] // 2


def _slice(volume: np.ndarray, index: int | None) -> np.ndarray:
    return volume if index is None else volume[..., index]


def _colour(label_map: np.ndarray) -> np.ndarray:
    """Colour a label map as RGBA: one colour per value, background transparent."""
    rgba = np.zeros((*label_map.shape, 4), dtype=np.float32)
    for value in np.unique(label_map):
        if value == 0:
            continue
        red, green, blue = LABEL_COLOURS[(int(value) - 1) % len(LABEL_COLOURS)]
        rgba[label_map == value] = (red, green, blue, OVERLAY_ALPHA)
    return rgba


def _add_legend(figure, label_names: dict[int, str]) -> None:
    from matplotlib.patches import Patch

    handles = [
        Patch(color=LABEL_COLOURS[(value - 1) % len(LABEL_COLOURS)], label=name)
        for value, name in sorted(label_names.items()) if value != 0
    ]
    if handles:
        figure.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=9, frameon=False)

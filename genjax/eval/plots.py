"""Drawing primitives for the figures of a run directory (PNG).

They draw on :class:`matplotlib.figure.Figure` objects of their own and never touch pyplot, so
genjax leaves a notebook's backend and its open figures alone.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure


def _subplots(rows: int, cols: int, figsize: tuple[float, float]) -> tuple[Figure, np.ndarray]:
    """A figure and its ``[rows, cols]`` array of axes."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(rows, cols, squeeze=False)


def _show_image(ax, image: np.ndarray) -> None:
    """One ``[H, W, C]`` image in [0, 1] on ``ax``, without axes."""
    if image.shape[-1] == 1:
        ax.imshow(image[..., 0], cmap="gray_r", vmin=0.0, vmax=1.0)
    else:
        ax.imshow(np.clip(image, 0.0, 1.0))
    ax.set_axis_off()


def reconstructions(originals: np.ndarray, recon: np.ndarray, path: Path) -> Path:
    """Originals over reconstructions: a two-row image grid, or a 2-D scatter with arrows for vectors."""
    if originals.ndim == 4:
        n = len(originals)
        fig, axes = _subplots(2, n, (0.8 * n, 1.9))
        for i in range(n):
            _show_image(axes[0, i], originals[i])
            _show_image(axes[1, i], recon[i])
        axes[0, 0].set_title("test originals (top) / reconstructions (bottom)", loc="left", fontsize=8)
    else:
        fig, axes = _subplots(1, 1, (4, 4))
        ax = axes[0, 0]
        ax.scatter(originals[:, 0], originals[:, 1], s=8, label="original")
        ax.scatter(recon[:, 0], recon[:, 1], s=8, label="reconstruction")
        ax.legend(fontsize=7)
        ax.set_title("first two coordinates", fontsize=8)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def loss_curves(history: Sequence[dict], path: Path, title: str = "") -> Path:
    """Training loss against step (each network's own loss where there are several, as a GAN's ``d_loss`` and
    ``g_loss``; log scale when positive), then one panel per ``eval_*`` measure, its real-data ``_floor`` (if
    logged) a dashed line."""
    steps = np.array([record["step"] for record in history])
    parts = [k for k in history[0] if k.endswith("_loss")]  # a GAN's d_loss and g_loss: their sum says little
    train_keys = parts or [k for k in history[0] if k == "loss"]
    logged = {k for record in history for k in record if k.startswith("eval_")}
    eval_keys = sorted(k for k in logged if not k.endswith("_floor"))  # a floor is drawn on its measure's panel
    fig, axes = _subplots(1, 1 + len(eval_keys), (4.5 * (1 + len(eval_keys)), 3.2))
    train_ax = axes[0, 0]
    for key in train_keys:
        train_ax.plot(steps, np.array([record[key] for record in history], dtype=float), label=key)
    if all(record[k] > 0 for record in history for k in train_keys):
        train_ax.set_yscale("log")
    train_ax.set_title(f"{title} training loss (mean per logged call)".strip(), fontsize=9)
    train_ax.set_ylabel("loss")
    train_ax.legend(fontsize=7)
    for ax, key in zip(axes[0, 1:], eval_keys):
        points = [(record["step"], record[key]) for record in history if key in record]
        ax.plot(*zip(*points), marker="o")
        floors = [record[f"{key}_floor"] for record in history if f"{key}_floor" in record]
        if floors:
            ax.axhline(floors[-1], color="gray", linestyle="--", label="real data (train vs test)")
            ax.legend(fontsize=7)
        ax.set_title(f"held-out {key.removeprefix('eval_')}", fontsize=9)
        ax.set_ylabel(key.removeprefix("eval_"))
    for ax in axes[0]:
        ax.set_xlabel("step")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def image_grid(images: np.ndarray, path: Path, rows: int = 8, title: str = "",
               row_labels: Sequence[str] = ()) -> Path:
    """Images ``[N, H, W, C]`` in [0, 1] on a ``rows x ceil(N / rows)`` grid (row-major), each row named by
    ``row_labels`` (if given) at its left. Drawn as one mosaic (one image on one axes: fast for large grids)."""
    n, height, width, channels = images.shape
    cols = int(np.ceil(n / rows))
    gap = max(1, height // 14)
    blank = 0.0 if channels == 1 else 1.0  # white under gray_r, and in RGB
    mosaic = np.full((rows * (height + gap) - gap, cols * (width + gap) - gap, channels), blank, np.float32)
    for i, image in enumerate(np.clip(images, 0.0, 1.0)):
        top, left = (i // cols) * (height + gap), (i % cols) * (width + gap)
        mosaic[top:top + height, left:left + width] = image
    fig, axes = _subplots(1, 1, (0.7 * cols, 0.7 * rows + (0.3 if title else 0)))
    _show_image(axes[0, 0], mosaic)
    for row, label in enumerate(row_labels[:rows]):
        axes[0, 0].text(-2 * gap, row * (height + gap) + height / 2, label, ha="right", va="center", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=8)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def scatter(samples: np.ndarray, path: Path, reference: np.ndarray | None = None, modes: np.ndarray | None = None,
            title: str = "") -> Path:
    """2-D samples (first two coordinates) over reference data and mixture centres."""
    fig, axes = _subplots(1, 1, (4.2, 4.2))
    ax = axes[0, 0]
    if reference is not None:
        ax.scatter(reference[:2500, 0], reference[:2500, 1], s=2, c="0.75", label="data")
    ax.scatter(samples[:, 0], samples[:, 1], s=2, c="tab:blue", alpha=0.6, label="samples")
    if modes is not None:
        ax.scatter(modes[:, 0], modes[:, 1], s=40, marker="x", c="tab:red", label="modes")
    ax.set_aspect("equal")
    ax.legend(fontsize=7, loc="upper right", markerscale=3)
    ax.set_title(title or f"{len(samples)} samples", fontsize=8)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def code_views(panels: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> Path:
    """One panel per model: codes ``[N, L]`` projected on their first two principal axes (the codes
    themselves when L = 2), points coloured by their class labels ``[N]``."""
    fig, axes = _subplots(1, len(panels), (3.6 * len(panels), 3.4))
    for ax, (name, (codes, labels)) in zip(axes[0], panels.items()):
        centred = codes - codes.mean(0)
        if codes.shape[1] > 2:
            _, _, axes_t = np.linalg.svd(centred, full_matrices=False)
            centred = centred @ axes_t[:2].T
        points = ax.scatter(centred[:, 0], centred[:, 1], c=labels, cmap="tab10", s=6, vmin=-0.5, vmax=9.5)
        ax.set_title(f"{name} (L={codes.shape[1]})", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(points, ax=axes[0].tolist(), ticks=range(10), fraction=0.02, label="class")
    fig.suptitle("test-split codes on their first two principal axes", fontsize=9)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def trial_scatters(samples: Sequence[np.ndarray], modes: np.ndarray, titles: Sequence[str], path: Path) -> Path:
    """One panel per trial: its 2-D samples over discs at the mixture's ``modes``, up to 5 panels a row."""
    cols = min(len(samples), 5)
    rows = int(np.ceil(len(samples) / cols))
    fig, axes = _subplots(rows, cols, (2.6 * cols, 2.6 * rows))
    for ax in axes.ravel():
        ax.set_axis_off()
    for ax, s, title in zip(axes.ravel(), samples, titles):
        ax.scatter(modes[:, 0], modes[:, 1], s=60, c="mistyrose", zorder=1)  # mode discs beneath
        ax.scatter(s[:, 0], s[:, 1], s=1, alpha=0.5, zorder=2)
        ax.set_title(title, fontsize=7)
        ax.set_aspect("equal")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path


def sweep_curves(table: Sequence[dict], field: str, measure: str, path: Path) -> Path:
    """A sweep's ``measure`` (mean with standard-error bars over seeds) against the values of ``field``, one line per
    combination of the other swept fields; log x when the values span more than a factor of 10. ``table``: the rows
    of :func:`genjax.cli.sweep.summarise`."""
    lines: dict[tuple, list[tuple[float, float, float]]] = {}
    for row in table:
        stat = row["measures"].get(measure)
        if stat is None:
            continue
        others = tuple((f, v) for f, v in row["setting"].items() if f != field)
        lines.setdefault(others, []).append((row["setting"][field], stat["mean"], stat["se"] or 0.0))
    fig, axes = _subplots(1, 1, (5.0, 3.5))
    ax = axes[0, 0]
    for others, points in lines.items():
        x, y, se = (np.array(column, dtype=float) for column in zip(*sorted(points)))
        label = ", ".join(f"{f}={v:g}" for f, v in others) or measure
        ax.errorbar(x, y, yerr=se, marker="o", capsize=3, label=label)
    values = [row["setting"][field] for row in table]
    if min(values) > 0 and max(values) / min(values) > 10:
        ax.set_xscale("log")
    ax.set_xlabel(field)
    ax.set_ylabel(measure)
    ax.set_title(f"{measure} against {field} (mean ± s.e. over seeds)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path

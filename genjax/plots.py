"""Figures written into a run directory (matplotlib, Agg backend, PNG)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


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
        fig, axes = plt.subplots(2, n, figsize=(0.8 * n, 1.9), squeeze=False)
        for i in range(n):
            _show_image(axes[0, i], originals[i])
            _show_image(axes[1, i], recon[i])
        axes[0, 0].set_title("test originals (top) / reconstructions (bottom)", loc="left", fontsize=8)
    else:
        fig, ax = plt.subplots(figsize=(4, 4))
        ax.scatter(originals[:, 0], originals[:, 1], s=8, label="original")
        ax.scatter(recon[:, 0], recon[:, 1], s=8, label="reconstruction")
        ax.legend(fontsize=7)
        ax.set_title("first two coordinates", fontsize=8)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def loss_curves(history: Sequence[dict], path: Path, title: str = "") -> Path:
    """Training loss terms against step (log scale when positive), then one panel per ``eval_*`` measure."""
    steps = np.array([record["step"] for record in history])
    train_keys = [k for k in history[0] if k == "loss" or k.endswith("_loss")]
    eval_keys = sorted({k for record in history for k in record if k.startswith("eval_")})
    fig, axes = plt.subplots(1, 1 + len(eval_keys), figsize=(4.5 * (1 + len(eval_keys)), 3.2), squeeze=False)
    train_ax = axes[0, 0]
    for key in train_keys:
        train_ax.plot(steps, np.array([record[key] for record in history], dtype=float), label=key)
    if all(record[k] > 0 for record in history for k in train_keys):
        train_ax.set_yscale("log")
    train_ax.set_title(f"{title} training loss (mean per logged call)".strip(), fontsize=9)
    train_ax.legend(fontsize=7)
    for ax, key in zip(axes[0, 1:], eval_keys):
        points = [(record["step"], record[key]) for record in history if key in record]
        ax.plot(*zip(*points), marker="o")
        ax.set_title(f"held-out {key.removeprefix('eval_')}", fontsize=9)
    for ax in axes[0]:
        ax.set_xlabel("step")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def image_grid(images: np.ndarray, path: Path, rows: int = 8, title: str = "") -> Path:
    """Images ``[N, H, W, C]`` in [0, 1] on a ``rows x ceil(N / rows)`` grid (row-major)."""
    cols = int(np.ceil(len(images) / rows))
    fig, axes = plt.subplots(rows, cols, figsize=(0.7 * cols, 0.7 * rows + (0.3 if title else 0)), squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for i, image in enumerate(images):
        _show_image(axes[i // cols, i % cols], image)
    if title:
        fig.suptitle(title, fontsize=8)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def scatter(samples: np.ndarray, path: Path, reference: np.ndarray | None = None, modes: np.ndarray | None = None,
            title: str = "") -> Path:
    """2-D samples (first two coordinates) over reference data and mixture centres."""
    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    if reference is not None:
        ax.scatter(reference[:2500, 0], reference[:2500, 1], s=2, c="0.75", label="data")
    ax.scatter(samples[:, 0], samples[:, 1], s=2, c="tab:blue", alpha=0.6, label="samples")
    if modes is not None:
        ax.scatter(modes[:, 0], modes[:, 1], s=40, marker="x", c="tab:red", label="modes")
    ax.set_aspect("equal")
    ax.legend(fontsize=7, loc="upper right", markerscale=3)
    ax.set_title(title or f"{len(samples)} samples", fontsize=8)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def code_views(panels: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> Path:
    """One panel per model: codes ``[N, L]`` projected on their first two principal axes (the codes
    themselves when L = 2), points coloured by their class labels ``[N]``."""
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.4), squeeze=False)
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
    plt.close(fig)
    return path

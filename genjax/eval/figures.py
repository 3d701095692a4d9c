"""A trained state's figures, chosen from what its family declares it can do.

``encodes``: ``reconstructions.png`` (16 test examples over their reconstructions) and, for images,
``interpolations.png`` (decoded straight lines between the codes of 8 pairs of test examples).
``samples``: ``samples.png``, for images a grid (one row of 10 per head when the state has several
heads, else 64 samples in 8 rows), for vectors a scatter of 2,500 samples over the test data.
"""
from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from genjax.core.data import Dataset
from genjax.core.state import State
from genjax.eval import plots
from genjax.eval.evaluate import EVAL_SAMPLES
from genjax.models.family import Family


def write_figures(family: Family, state: State, dataset: Dataset, workdir: Path) -> list[Path]:
    """Draw every figure ``family``'s capabilities allow into ``workdir``; return their paths (seed 1)."""
    workdir = Path(workdir)
    written = []
    if family.CAPABILITIES.encodes:
        originals = dataset.x_test[:16]
        recon = np.asarray(family.reconstruct(state, jnp.asarray(originals)))
        written.append(plots.reconstructions(originals, recon, workdir / "reconstructions.png"))
        if dataset.is_image:
            lines = np.asarray(family.interpolate(state, jnp.asarray(dataset.x_test[:8]),
                                                  jnp.asarray(dataset.x_test[8:16]), 10))
            written.append(plots.image_grid(lines.reshape(-1, *lines.shape[2:]), workdir / "interpolations.png",
                                            rows=8, title="straight lines in code space between test images"))
    if family.CAPABILITIES.samples:
        written.append(_samples_figure(family, state, dataset, workdir / "samples.png"))
    return written


def _samples_figure(family: Family, state: State, dataset: Dataset, path: Path) -> Path:
    key = jax.random.key(1)
    if not dataset.is_image:
        return plots.scatter(np.asarray(family.sample(state, key, EVAL_SAMPLES)), path, dataset.x_test, dataset.modes)
    heads = family.num_heads(state.config) if family.CAPABILITIES.heads else 0
    if heads > 1:
        rows = [np.asarray(family.sample(state, jax.random.fold_in(key, k), 10, head=k)) for k in range(heads)]
        return plots.image_grid(np.concatenate(rows), path, rows=heads, title=f"10 samples from each of {heads} heads",
                                row_labels=[f"head {k}" for k in range(heads)])
    return plots.image_grid(np.asarray(family.sample(state, key, 64)), path, rows=8, title="64 samples")

"""Running a jitted function over a whole split on the host's behalf, in fixed-shape chunks."""
from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp
import numpy as np

EVAL_BATCH = 512


def batched(fn: Callable, x: np.ndarray, batch_size: int = EVAL_BATCH) -> np.ndarray:
    """``fn`` over ``x`` in chunks of one fixed shape (the last chunk padded), so it compiles once."""
    chunk = min(batch_size, len(x))
    outputs = []
    for start in range(0, len(x), chunk):
        part = x[start : start + chunk]
        pad = chunk - len(part)
        if pad:
            part = np.concatenate([part, np.zeros((pad, *part.shape[1:]), part.dtype)])
        outputs.append(np.asarray(fn(jnp.asarray(part)))[: chunk - pad])
    return np.concatenate(outputs)

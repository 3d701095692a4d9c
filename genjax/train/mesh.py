"""Device meshes: a 1-D :class:`~jax.sharding.Mesh` over the first N devices, and placing trees on it.

Data parallelism uses the axis ``"data"`` (each batch split by rows; XLA's SPMD partitioner inserts
the gradient all-reduce); many seeds use the axis ``"seeds"`` (each device trains its own seeds).
"""
from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from genjax.core.errors import ConfigError

DATA_AXIS = "data"
SEED_AXIS = "seeds"


def _mesh(devices: int, axis: str) -> Mesh:
    """A 1-D mesh with axis ``axis`` over the first ``devices`` devices."""
    available = jax.device_count()
    if not isinstance(devices, int) or not 1 <= devices <= available:
        raise ConfigError(f"devices must be between 1 and the {available} available, got {devices!r}")
    return Mesh(np.array(jax.devices()[:devices]), (axis,))


def data_mesh(devices: int, batch_rows: int) -> Mesh:
    """A 1-D mesh named ``"data"`` over the first ``devices`` devices; the batch must split evenly."""
    mesh = _mesh(devices, DATA_AXIS)
    if batch_rows % devices:
        raise ConfigError(f"a batch of {batch_rows} rows does not split evenly over {devices} devices; choose a "
                          f"batch_size whose batch is a multiple of {devices}")
    return mesh


def seed_mesh(devices: int, seeds: int) -> Mesh:
    """A 1-D mesh named ``"seeds"`` over the first ``devices`` devices; the seeds must split evenly."""
    mesh = _mesh(devices, SEED_AXIS)
    if seeds % devices:
        raise ConfigError(f"{seeds} seeds do not split evenly over {devices} devices; use a multiple of {devices} "
                          "seeds or fewer devices")
    return mesh


def replicate(tree: Any, mesh: Mesh | None) -> Any:
    """``tree`` on every device of ``mesh`` (or on the default device without one)."""
    if mesh is None:
        return jax.device_put(tree)
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))

"""Deep generative networks without a discriminator: a multi-head generator trained by kernel moment matching.

One generator has a shared MLP trunk and ``num_heads`` heads, one per sample type (e.g. per digit
class). Each step, head ``k`` generates ``samples_per_head`` samples and the loss is the sum over heads
of the unbiased MMD^2 (:func:`genjax.losses.mmd2`) between them and the examples of class ``k`` in
the real batch. ``num_heads=1`` is a plain generative moment-matching network (Li et al. 2015) and
needs no labels; ``num_heads > 1`` needs integer labels ``0..num_heads-1``.

Kernel: a mixture of Gaussian kernels with bandwidths ``bandwidths`` times a unit. With
``bandwidth_unit="median"`` (default) the unit is the median pairwise distance between the real
batch's examples (computed per step, no gradient), so the same default serves pixels and 2-D points;
``"absolute"`` uses the bandwidths in data units.

Contract (DESIGN.md): ``Config``, ``init``, ``train_step``, ``sample(state, key, n, head=None)``.
"""
from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from genjax import config as cfg_lib
from genjax import losses, metrics, nets, optim, plots
from genjax.data import Dataset
from genjax.errors import ConfigError
from genjax.state import State

DEFAULT_STEPS = 3000  # what experiments.train and experiments.mode_coverage run unless told otherwise
BANDWIDTH_UNITS = ("median", "absolute")
MEDIAN_ROWS = 256  # real examples whose pairwise distances set the "median" bandwidth unit


@dataclasses.dataclass(frozen=True)
class Config:
    """DGN hyperparameters; every field has a default (``dataclasses.replace`` to change)."""

    latent_dim: int = 16  # z ~ N(0, I_latent_dim)
    architecture: str = "mlp"  # the multi-head generator is an MLP
    hidden_dims: tuple[int, ...] = (256, 256)  # shared trunk widths
    head_dims: tuple[int, ...] = (128,)  # hidden widths of each head (then a linear layer to the data)
    activation: str = "relu"
    num_heads: int = 0  # heads; 0: one per class of the data's labels (genjax.fit), or 1 without labels
    samples_per_head: int = 128  # generated examples per head per step
    bandwidths: tuple[float, ...] = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)  # kernel bandwidths, in bandwidth_unit
    bandwidth_unit: str = "median"  # "median" (median pairwise distance of the real batch) or "absolute"
    output: str = "auto"  # "auto" (sigmoid for images, linear for vectors), "sigmoid", "linear"
    batch_size: int = 128  # real examples per head per step (a batch holds num_heads * batch_size, any order)
    learning_rate: float = 1e-3
    schedule: str = "cosine"
    decay_steps: int = 0  # cosine length; 0: the run's (genjax.fit), or DEFAULT_STEPS
    warmup_steps: int = 0

    def __post_init__(self):
        cfg_lib.require_types(self)
        cfg_lib.require_positive(self, "latent_dim", "batch_size", "learning_rate")
        cfg_lib.require_nonnegative(self, "num_heads", "warmup_steps", "decay_steps")
        cfg_lib.require_choice(self, "architecture", ("mlp",))
        cfg_lib.require_choice(self, "activation", nets.ACTIVATIONS)
        cfg_lib.require_choice(self, "output", losses.OUTPUTS)
        cfg_lib.require_choice(self, "bandwidth_unit", BANDWIDTH_UNITS)
        optim.validate_schedule(self)
        cfg_lib.require_widths(self, "hidden_dims")
        cfg_lib.require_widths(self, "head_dims", allow_empty=True)
        if self.samples_per_head < 2:
            raise ConfigError(f"samples_per_head must be at least 2 (unbiased MMD), got {self.samples_per_head}")
        if not self.bandwidths or min(self.bandwidths) <= 0:
            raise ConfigError(f"bandwidths must be a non-empty list of positive numbers, got {self.bandwidths}")


PRESETS = {
    # 2-D mixtures (experiments.mode_coverage --model dgn --preset mixture2d --steps 20000): a 2-D latent
    # (16 leaves the grid's modes blurred: 3% high quality at 5,000 steps, 21% with 2) and one head.
    "mixture2d": Config(latent_dim=2, num_heads=1),
}


def resolve_config(cfg: Config, dataset: Dataset) -> Config:
    """``num_heads`` 0 becomes the data set's class count (1 for unlabelled data); others are checked against it."""
    if cfg.num_heads == 0:
        return dataclasses.replace(cfg, num_heads=dataset.num_classes or 1)
    if cfg.num_heads > 1 and dataset.y_train is None:
        raise ConfigError(f"num_heads={cfg.num_heads} needs a labelled data set (one head per class); {dataset.name} "
                          "has no labels, so use num_heads=1")
    if cfg.num_heads > 1 and dataset.num_classes != cfg.num_heads:
        raise ConfigError(f"num_heads={cfg.num_heads} but {dataset.name} has {dataset.num_classes} classes; use "
                          f"num_heads={dataset.num_classes} (one per class), 1, or 0 (one per class)")
    return cfg


@functools.cache
def _generator(cfg: Config, data_shape: tuple[int, ...]) -> nets.HeadedDecoder:
    return nets.HeadedDecoder(data_shape, cfg.num_heads or 1, cfg.hidden_dims, cfg.head_dims, cfg.activation)


def batch_rows(cfg: Config) -> int:
    """Real examples per ``train_step`` batch: ``batch_size`` per head on average (uniform over the data)."""
    return max(cfg.num_heads, 1) * cfg.batch_size


def _check_labels(cfg: Config, batch: dict) -> None:
    if cfg.num_heads > 1 and "y" not in batch:
        raise ConfigError(f"num_heads={cfg.num_heads} needs labels (one head per class): batch['y']; unlabelled "
                          "data train with num_heads=1")


def init(key: jax.Array, cfg: Config, batch: dict) -> State:
    """A fresh state; shapes come from the example ``batch['x']`` ``[N, *data_shape]``.

    ``num_heads`` 0 means one head without labels in ``batch``; with labels, pass it explicitly
    (``genjax.fit`` sets it to the data set's class count).
    """
    data_shape = nets.check_batch(cfg.architecture, batch)
    if cfg.num_heads == 0:
        if "y" in batch:
            raise ConfigError("num_heads=0 (one head per class) is resolved from the whole data set by genjax.fit "
                              "or dgn.resolve_config; pass num_heads explicitly to init")
        cfg = dataclasses.replace(cfg, num_heads=1)
    _check_labels(cfg, batch)
    if cfg.num_heads > 1 and int(np.max(batch["y"])) >= cfg.num_heads:
        raise ConfigError(f"labels reach {int(np.max(batch['y']))} but num_heads is {cfg.num_heads} (one head per "
                          "class)")
    losses.check_output_range(cfg.output, data_shape, np.asarray(batch["x"]))
    params = {"generator": _generator(cfg, data_shape).init(key, jnp.zeros((cfg.num_heads, 1, cfg.latent_dim)))}
    tx = optim.config_adam(cfg, DEFAULT_STEPS)
    return State(step=jnp.zeros((), jnp.int32), params=params, opt_state={"generator": tx.init(params["generator"])},
                 extra={}, config=cfg, data_shape=data_shape)


def _activate(state: State, outputs: jax.Array) -> jax.Array:
    return losses.activate(outputs, losses.output_activation(state.config.output, state.data_shape))


def _bandwidths(cfg: Config, real: jax.Array) -> jax.Array:
    """Kernel bandwidths in data units ``[len(bandwidths)]`` for the flattened real batch ``[N, D]``."""
    scale = jnp.asarray(cfg.bandwidths, real.dtype)
    if cfg.bandwidth_unit == "absolute":
        return scale
    subset = real[:MEDIAN_ROWS]
    d2 = losses.squared_distances(subset, subset)
    off_diagonal = d2[jnp.triu_indices(subset.shape[0], k=1)]
    return scale * jax.lax.stop_gradient(jnp.sqrt(jnp.median(off_diagonal)))


def _class_rows(cfg: Config, x: jax.Array, y: jax.Array | None) -> tuple[jax.Array, jax.Array]:
    """The real examples of each head: ``[K, R, D]`` rows and a ``[K, R]`` 0/1 mask of the valid ones.

    One head takes the whole batch. Several heads gather the rows of their class, up to
    R = 2 * batch_size of them (a uniform batch holds about batch_size per class; rows past R are ignored).
    """
    if cfg.num_heads == 1:
        return x[None], jnp.ones((1, x.shape[0]), x.dtype)
    capacity = min(2 * cfg.batch_size, x.shape[0])

    def gather(k):
        index = jnp.nonzero(y == k, size=capacity, fill_value=0)[0]
        valid = jnp.arange(capacity) < jnp.sum(y == k)
        return x[index], valid.astype(x.dtype)

    return jax.vmap(gather)(jnp.arange(cfg.num_heads))


@jax.jit
def train_step(state: State, batch: dict, key: jax.Array) -> tuple[State, dict]:
    """One Adam step on the sum over heads of MMD^2(head k's samples, the batch's examples of class k).

    ``batch['x']`` ``[num_heads * batch_size, *data_shape]`` in any order (and ``batch['y']`` when
    ``num_heads`` > 1). Metrics: ``loss`` (the sum), ``mmd2_mean`` (its mean over heads), ``mmd2_max``
    (the worst head), ``bandwidth`` (the unit in data units). Pure; compiles once per batch shape.
    """
    cfg = state.config
    nets.check_batch(cfg.architecture, batch, state.data_shape)
    _check_labels(cfg, batch)
    real = batch["x"].reshape(batch["x"].shape[0], -1)
    bandwidths = _bandwidths(cfg, real)
    rows, masks = _class_rows(cfg, real, batch.get("y"))
    z = jax.random.normal(key, (cfg.num_heads, cfg.samples_per_head, cfg.latent_dim))

    def loss_fn(params):
        fake = _activate(state, _generator(cfg, state.data_shape).apply(params, z))
        fake = fake.reshape(cfg.num_heads, cfg.samples_per_head, -1)
        per_head = jax.vmap(lambda f, r, m: losses.mmd2(f, r, bandwidths, m))(fake, rows, masks)
        return jnp.sum(per_head), per_head

    (loss, per_head), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params["generator"])
    tx = optim.config_adam(cfg, DEFAULT_STEPS)
    updates, opt_state = tx.update(grads, state.opt_state["generator"], state.params["generator"])
    new_state = state.replace(step=state.step + 1, opt_state={"generator": opt_state},
                              params={"generator": optax.apply_updates(state.params["generator"], updates)})
    return new_state, {"loss": loss, "mmd2_mean": jnp.mean(per_head), "mmd2_max": jnp.max(per_head),
                       "bandwidth": bandwidths[0] / cfg.bandwidths[0]}


@functools.partial(jax.jit, static_argnames=("n", "head"))
def sample(state: State, key: jax.Array, n: int, head: int | None = None) -> jax.Array:
    """``n`` samples ``[n, *data_shape]`` in data space from head ``head``, or with ``head=None``
    from every head in turn (sample ``i`` from head ``i % num_heads``)."""
    cfg = state.config
    generator = _generator(cfg, state.data_shape)
    if head is not None:
        if not 0 <= head < cfg.num_heads:
            raise ConfigError(f"head {head} does not exist; valid heads: 0..{cfg.num_heads - 1}")
        z = jax.random.normal(key, (n, cfg.latent_dim))
        return _activate(state, generator.apply(state.params["generator"], z, head))
    per_head = -(-n // cfg.num_heads)
    z = jax.random.normal(key, (cfg.num_heads, per_head, cfg.latent_dim))
    out = _activate(state, generator.apply(state.params["generator"], z))  # [K, per_head, *shape]
    return jnp.swapaxes(out, 0, 1).reshape(-1, *state.data_shape)[:n]


def _mean_pairwise_distance(x: np.ndarray) -> float:
    flat = x.reshape(len(x), -1).astype(np.float64)
    d2 = np.maximum(np.sum(flat**2, 1)[:, None] + np.sum(flat**2, 1)[None, :] - 2 * flat @ flat.T, 0.0)
    return float(np.sqrt(d2)[np.triu_indices(len(flat), k=1)].mean())


def head_report(state: State, dataset: Dataset, per_head: int = 500) -> dict[str, float]:
    """Each head against its class (``num_heads`` > 1 on labelled data), ``per_head`` samples per head (seed 0).

    ``head_accuracy``: the fraction of head k's samples that a logistic regression trained on the real
    training examples labels k, averaged over heads (``head_accuracy_min``: the worst head).
    ``head_diversity``: mean pairwise distance within a head's samples over that within the real
    training examples of its class, averaged over heads (``head_diversity_min``: the least diverse).
    """
    classifier, _ = metrics.pixel_classifier(dataset)
    accuracy, diversity = [], []
    for k in range(state.config.num_heads):
        samples = np.asarray(sample(state, jax.random.fold_in(jax.random.key(0), k), per_head, head=k))
        accuracy.append(float(np.mean(classifier.predict(samples.reshape(per_head, -1)) == k)))
        real = dataset.x_train[dataset.y_train == k]
        diversity.append(_mean_pairwise_distance(samples) / _mean_pairwise_distance(real))
    return {"head_accuracy": float(np.mean(accuracy)), "head_accuracy_min": float(np.min(accuracy)),
            "head_diversity": float(np.mean(diversity)), "head_diversity_min": float(np.min(diversity))}


def evaluate(state: State, dataset: Dataset, full: bool = True) -> dict[str, float | None]:
    """:func:`metrics.sample_report` on 2,500 samples from all heads in turn (seed 0); with ``full`` and
    several heads, :func:`head_report` too."""
    samples = np.asarray(sample(state, jax.random.key(0), metrics.EVAL_SAMPLES))
    report = metrics.sample_report(samples, dataset, full)
    if full and state.config.num_heads > 1 and dataset.y_train is not None:
        report.update(head_report(state, dataset))
    return report


def write_figures(state: State, dataset: Dataset, workdir: Path) -> list[Path]:
    """``samples.png``: for images, one row of 10 samples per head (8 rows when there is one head);
    for vectors, a scatter of 2,500 samples over the data."""
    path = Path(workdir) / "samples.png"
    heads = state.config.num_heads
    if not dataset.is_image:
        return [plots.scatter(np.asarray(sample(state, jax.random.key(1), metrics.EVAL_SAMPLES)), path,
                              dataset.x_test, dataset.modes)]
    if heads == 1:
        return [plots.image_grid(np.asarray(sample(state, jax.random.key(1), 80, head=0)), path, rows=8)]
    rows = [np.asarray(sample(state, jax.random.fold_in(jax.random.key(1), k), 10, head=k)) for k in range(heads)]
    return [plots.image_grid(np.concatenate(rows), path, rows=heads)]

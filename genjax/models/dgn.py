"""Deep generative networks without a discriminator: a multi-head generator trained by kernel moment matching.

One generator has a shared trunk and ``num_heads`` heads, one per sample type (e.g. per digit
class): MLPs, or for images of 16x16 and up (``architecture="auto"``) a transposed-conv trunk whose
last layer each head owns (:class:`genjax.nn.nets.HeadedDecoder`). Each step, head ``k`` generates
``samples_per_head`` samples and the loss is the sum over heads of the unbiased MMD^2
(:func:`genjax.nn.losses.mmd2`) between them and the examples of class ``k`` in the real batch.
With ``head_inputs`` the trunk also takes each code's head as a one-hot input, so the whole network,
not only the head's own layers, knows which class it draws.
``num_heads=1`` is a plain generative moment-matching network (Li et al. 2015) and needs no labels;
``num_heads > 1`` needs integer labels ``0..num_heads-1``.

Kernel: a mixture of Gaussian kernels with bandwidths ``bandwidths`` times ``bandwidth_scale`` (one
factor a sweep can vary) times a unit. With
``bandwidth_unit="median"`` (default) the unit is the median pairwise distance between the real
batch's examples (computed per step, no gradient), so the same default serves pixels and 2-D points;
``"absolute"`` uses the bandwidths in data units.

Codes: with ``kernel_encoder``, the run directory of a trained autoencoder or VAE on the same data,
the loss adds ``code_weight`` times each head's MMD^2 between the
encoder's codes of its samples and of its real examples (the same bandwidths, in units of the codes' own
median distance). The frozen encoder rides along in ``state.extra["kernel_encoder"]`` (its state without
optimizer moments), so checkpoints hold it and the gradient flows through it into the generator. Pixel
distances see blotches and edges alike; code distances see shapes: on Fashion-MNIST, at 3,000 steps, the
heads' samples are labelled with their class 77.5% of the time against 72.9% with pixels alone (README),
at about twice the cost of a step. (Li et al.'s GMMN+AE matches codes too, but generates codes and decodes
them; here the generator stays in pixel space and the codes join the pixels in the kernel.)
"""
from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from genjax.core import config as cfg_lib
from genjax.core import optim
from genjax.core.errors import ConfigError
from genjax.core.state import State
from genjax.models import fields, registry
from genjax.models.family import (
    AUTO_RUN,
    Batch,
    Capabilities,
    Metrics,
    RunRecipe,
    batch_context,
    expect_config,
    expect_count,
)
from genjax.nn import draws, losses, nets

NAME = "dgn"
DEFAULT_STEPS = 3000  # what the scripts train for unless told otherwise
# Fields a sweep may vary in one program (genjax.train.sweep): a learning rate names the optimizers it drives.
SWEEPABLE = {"learning_rate": ("generator",), "bandwidth_scale": (), "code_weight": (), **optim.SWEEPABLE}
CAPABILITIES = Capabilities(samples=True, heads=True, labels=True, builds_on_runs=True)
BANDWIDTH_UNITS = ("median", "absolute")
MEDIAN_ROWS = 256  # real examples whose pairwise distances set the "median" bandwidth unit
KERNEL_ENCODER_STEPS = 5000  # training steps of the autoencoder behind kernel_encoder=auto
KERNEL_CODE_DIM = 32  # its code size


def _one_head_per_class(value: int, config: Config, context: cfg_lib.Context) -> int:
    """``num_heads`` 0: one head per class of the data (one head without labels); others are checked."""
    if value == 0:
        if not context.labelled:
            return 1
        if context.num_classes is None:
            raise ConfigError("num_heads=0 (one head per class) needs the whole data set's classes: genjax.fit "
                              "resolves it; pass num_heads explicitly to init")
        return context.num_classes
    if value > 1 and not context.labelled:
        raise ConfigError(f"num_heads={value} needs a labelled data set (one head per class); {context.data_name} "
                          "has no labels, so use num_heads=1")
    if value > 1 and context.num_classes is not None and context.num_classes != value:
        raise ConfigError(f"num_heads={value} but {context.data_name} has {context.num_classes} classes; use "
                          f"num_heads={context.num_classes} (one per class), 1, or 0 (one per class)")
    return value


def _at_least_two(name: str, value: int, config: Config) -> None:
    if value < 2:
        raise ConfigError(f"{name} must be at least 2 (unbiased MMD), got {value}")


def _positive_list(name: str, value: tuple[float, ...], config: Config) -> None:
    if not value or min(value) <= 0:
        raise ConfigError(f"{name} must be a non-empty list of positive numbers, got {value}")


def _absolute_path(value: str, config: Config, context: cfg_lib.Context) -> str:
    """``kernel_encoder`` as an absolute path (what ``config.json`` records, so that a resume works from anywhere);
    empty and ``auto`` stay."""
    return str(Path(value).expanduser().absolute()) if value not in ("", AUTO_RUN) else value


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config(optim.OptimizerFields):
    """DGN hyperparameters; every field has a default (``dataclasses.replace`` to change)."""

    latent_dim: int = fields.LATENT_DIM(16, "size of z ~ N(0, I)")
    architecture: str = fields.AUTO_ARCHITECTURE("auto")
    hidden_dims: tuple[int, ...] = fields.HIDDEN_DIMS((256, 256), "dense widths of the shared trunk")
    head_dims: tuple[int, ...] = cfg_lib.Spec("mlp: hidden widths of each head (then a linear layer to the data)",
                                              (cfg_lib.widths(allow_empty=True),))((128,))
    conv_channels: tuple[int, ...] = fields.CONV_CHANNELS((16, 32), "conv: channels of the transposed "
                                                          "convolutions, last map first (each head's own layer "
                                                          "follows the first)")
    activation: str = fields.ACTIVATION("relu")
    head_inputs: bool = cfg_lib.Spec("the trunk also takes each code's head as a one-hot input")(False)
    num_heads: int = cfg_lib.Spec("heads; 0: one per class of the data's labels (one without labels)",
                                  (cfg_lib.nonnegative,), resolve=_one_head_per_class)(0)
    samples_per_head: int = cfg_lib.Spec("generated examples per head per step", (_at_least_two,))(128)
    bandwidths: tuple[float, ...] = cfg_lib.Spec("kernel bandwidths, in bandwidth_unit",
                                                 (_positive_list,))((0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0))
    bandwidth_unit: str = cfg_lib.Spec("median (pairwise distance of the real batch) or absolute (data units)",
                                       (cfg_lib.choice(BANDWIDTH_UNITS),))("median")
    bandwidth_scale: float = cfg_lib.Spec("factor on every bandwidth (sweepable in one program)",
                                          (cfg_lib.positive,))(1.0)
    kernel_encoder: str = cfg_lib.Spec("run directory of an autoencoder or VAE trained on the same data: the loss "
                                       "also matches the codes of its frozen encoder; auto: an autoencoder genjax "
                                       "trains once and caches (32-d codes); empty: pixels only",
                                       resolve=_absolute_path)("")
    code_weight: float = cfg_lib.Spec("weight of the code term when kernel_encoder is set",
                                      (cfg_lib.nonnegative,))(1.0)
    output: str = fields.OUTPUT("auto")
    batch_size: int = fields.BATCH_SIZE(128, "real examples per head per step (a batch holds num_heads * "
                                             "batch_size, any order)")
    learning_rate: float = optim.LEARNING_RATE(1e-3)
    schedule: str = optim.SCHEDULE("cosine")


@functools.cache
def _generator(cfg: Config, data_shape: tuple[int, ...]) -> nets.HeadedDecoder:
    return nets.HeadedDecoder(data_shape, cfg.num_heads, cfg.hidden_dims, cfg.head_dims, cfg.activation,
                              cfg.architecture, cfg.conv_channels, cfg.head_inputs)


def batch_rows(cfg: Config) -> int:
    """Real examples per ``train_step`` batch: ``batch_size`` per head on average (uniform over the data)."""
    return max(cfg.num_heads, 1) * cfg.batch_size


def needs_labels(cfg: Config) -> bool:
    """Several heads train on ``batch['y']`` (one head per class)."""
    return cfg.num_heads > 1


def num_heads(cfg: Config) -> int:
    return cfg.num_heads


def _check_labels(cfg: Config, batch: Batch) -> None:
    if needs_labels(cfg) and "y" not in batch:
        raise ConfigError(f"num_heads={cfg.num_heads} needs labels (one head per class): batch['y']; unlabelled "
                          "data train with num_heads=1")


def init(key: jax.Array, cfg: Config, batch: Batch, kernel_encoder: State | None = None) -> State:
    """A fresh state; shapes come from the example ``batch['x']`` ``[N, *data_shape]``.

    ``num_heads`` 0 means one head without labels in ``batch``; with labels, pass it explicitly
    (``genjax.fit`` sets it to the data set's class count). With ``cfg.kernel_encoder`` set, pass the
    state of that run as ``kernel_encoder`` (:func:`genjax.train.rundir.init_state` loads it).
    """
    expect_config(cfg, Config, NAME)
    data_shape = nets.check_batch(cfg.architecture, batch)
    _check_labels(cfg, batch)
    cfg = cfg.resolved(batch_context(batch, data_shape, DEFAULT_STEPS))
    nets.check_batch(cfg.architecture, batch)
    if cfg.num_heads > 1 and int(np.max(batch["y"])) >= cfg.num_heads:
        raise ConfigError(f"labels reach {int(np.max(batch['y']))} but num_heads is {cfg.num_heads} (one head per "
                          "class)")
    losses.check_output_range(cfg.output, np.asarray(batch["x"]))
    z = jnp.zeros((cfg.num_heads, 1, cfg.latent_dim))  # one example per head
    params = {"generator": nets.init_variables(_generator(cfg, data_shape), key, z)}
    extra = {"kernel_encoder": _frozen_encoder(cfg, kernel_encoder, data_shape)} if cfg.kernel_encoder else {}
    return State.create(params=params, optimizers={"generator": optim.adam(cfg, cfg.learning_rate)}, config=cfg,
                        data_shape=data_shape, extra=extra)


def uses_runs(cfg: Config) -> dict[str, str]:
    """The trained runs ``init`` takes, by keyword: the ``kernel_encoder`` run directory when it is set."""
    return {"kernel_encoder": cfg.kernel_encoder} if cfg.kernel_encoder else {}


def run_recipe(name: str, cfg: Config) -> RunRecipe:
    """``kernel_encoder=auto``: an autoencoder with ``KERNEL_CODE_DIM``-d codes, ``KERNEL_ENCODER_STEPS`` steps; on
    images with the conv trunk, its encoder flattens the last feature map straight into the code (no dense
    layers: half the cost of a default encoder in every DGN step, and the codes probed as well, 0.827 against
    0.82-0.836 on Fashion-MNIST)."""
    changes = (("latent_dim", KERNEL_CODE_DIM),) + ((("hidden_dims", ()),) if cfg.architecture == "conv" else ())
    return RunRecipe("autoencoder", changes, KERNEL_ENCODER_STEPS)


def _frozen_encoder(cfg: Config, encoder: State | None, data_shape: tuple[int, ...]) -> State:
    """The ``kernel_encoder`` run's state without optimizer moments; ConfigError when it is missing, cannot
    encode, or was trained on examples of another shape."""
    if cfg.kernel_encoder == AUTO_RUN:
        raise ConfigError("kernel_encoder=auto names no run yet: genjax.fit trains and caches it (or pass a run "
                          "directory)")
    if encoder is None:
        raise ConfigError(f"kernel_encoder={cfg.kernel_encoder}: pass that run's state as init's kernel_encoder "
                          "(genjax.fit and load_run do, through genjax.train.rundir.init_state)")
    family = registry.family_of(encoder.config)
    if not family.CAPABILITIES.encodes:
        raise ConfigError(f"kernel_encoder {cfg.kernel_encoder} holds a {family.NAME}, which has no encoder; valid: "
                          f"a run of {', '.join(n for n in registry.names() if registry.get(n).CAPABILITIES.encodes)}")
    if encoder.data_shape != tuple(data_shape):
        raise ConfigError(f"kernel_encoder {cfg.kernel_encoder} encodes examples of shape {encoder.data_shape}, the "
                          f"data's are {tuple(data_shape)}")
    return encoder.replace(opt_state={})


def _activate(state: State, outputs: jax.Array) -> jax.Array:
    return losses.activate(outputs, state.config.output)


def _bandwidth_unit(cfg: Config, real: jax.Array) -> jax.Array:
    """The bandwidths' unit in data units (a scalar) for the flattened real batch ``[N, D]``."""
    if cfg.bandwidth_unit == "absolute":
        return jnp.ones((), real.dtype)
    subset = real[:MEDIAN_ROWS]
    d2 = losses.squared_distances(subset, subset)
    off_diagonal = d2[jnp.triu_indices(subset.shape[0], k=1)]
    return jax.lax.stop_gradient(jnp.sqrt(jnp.median(off_diagonal)))


def _class_index(cfg: Config, y: jax.Array | None, n: int) -> tuple[jax.Array | None, jax.Array]:
    """Which of the batch's ``n`` rows each head matches: ``[K, R]`` row indices (None: one head takes the whole
    batch) and a ``[K, R]`` 0/1 float32 mask of the valid ones.

    Several heads take the rows of their class, up to R = 2 * batch_size of them (a uniform batch holds about
    batch_size per class; rows past R are ignored).
    """
    if cfg.num_heads == 1:
        return None, jnp.ones((1, n), jnp.float32)
    capacity = min(2 * cfg.batch_size, n)

    def of_class(k):
        index = jnp.nonzero(y == k, size=capacity, fill_value=0)[0]
        return index, jnp.arange(capacity) < jnp.sum(y == k)

    index, valid = jax.vmap(of_class)(jnp.arange(cfg.num_heads))
    return index, valid.astype(jnp.float32)


def _class_rows(x: jax.Array, index: jax.Array | None) -> jax.Array:
    """The rows ``[K, R, D]`` of ``x`` ``[N, D]`` that :func:`_class_index` gave each head."""
    return x[None] if index is None else x[index]


@jax.jit
def train_step(state: State, batch: Batch, key: jax.Array) -> tuple[State, Metrics]:
    """One Adam step on the sum over heads of MMD^2(head k's samples, the batch's examples of class k).

    ``batch['x']`` ``[num_heads * batch_size, *data_shape]`` in any order (and ``batch['y']`` when
    ``num_heads`` > 1). Metrics: ``loss`` (the sum), ``mmd2_mean`` (its mean over heads), ``mmd2_max``
    (the worst head), ``bandwidth`` (the unit in data units). Pure; compiles once per batch shape.
    """
    cfg = state.config
    expect_config(cfg, Config, NAME)
    nets.check_batch(cfg.architecture, batch, state.data_shape)
    _check_labels(cfg, batch)
    real = batch["x"].reshape(batch["x"].shape[0], -1)
    unit = _bandwidth_unit(cfg, real)
    bandwidths = jnp.asarray(cfg.bandwidths, real.dtype) * (state.hp("bandwidth_scale") * unit)
    index, masks = _class_index(cfg, batch.get("y"), real.shape[0])
    rows = _class_rows(real, index)
    z = draws.normal(key, (cfg.num_heads, cfg.samples_per_head, cfg.latent_dim))
    per_head_mmd2 = jax.vmap(losses.mmd2, in_axes=(0, 0, None, 0))
    if cfg.kernel_encoder:
        encoder = state.extra["kernel_encoder"]
        encode = registry.family_of(encoder.config).codes
        real_codes = jax.lax.stop_gradient(encode(encoder, batch["x"]))
        code_bandwidths = jnp.asarray(cfg.bandwidths, real.dtype) * (state.hp("bandwidth_scale")
                                                                      * _bandwidth_unit(cfg, real_codes))
        code_rows = _class_rows(real_codes, index)

    def loss_fn(params):
        fake = _activate(state, _generator(cfg, state.data_shape).apply(params, z))
        per_head = per_head_mmd2(fake.reshape(cfg.num_heads, cfg.samples_per_head, -1), rows, bandwidths, masks)
        if cfg.kernel_encoder:
            codes = encode(encoder, fake.reshape(-1, *state.data_shape))
            per_head += state.hp("code_weight") * per_head_mmd2(
                codes.reshape(cfg.num_heads, cfg.samples_per_head, -1), code_rows, code_bandwidths, masks)
        return jnp.sum(per_head), per_head

    (loss, per_head), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params["generator"])
    return state.apply_gradients({"generator": grads}), {
        "loss": loss, "mmd2_mean": jnp.mean(per_head), "mmd2_max": jnp.max(per_head),
        "bandwidth": unit}


def sample(state: State, key: jax.Array, n: int, head: int | None = None) -> jax.Array:
    """``n`` samples ``[n, *data_shape]`` in data space from head ``head``, or with ``head=None``
    from every head in turn (sample ``i`` from head ``i % num_heads``). One compile serves every head."""
    expect_config(state.config, Config, NAME)
    expect_count(n)
    if head is None:
        return _sample_heads(state, key, n)
    if not 0 <= head < state.config.num_heads:
        raise ConfigError(f"head {head} does not exist; valid heads: 0..{state.config.num_heads - 1}")
    return _sample_head(state, key, n, jnp.asarray(head, jnp.int32))


@functools.partial(jax.jit, static_argnames="n")
def _sample_head(state: State, key: jax.Array, n: int, head: jax.Array) -> jax.Array:
    z = jax.random.normal(key, (n, state.config.latent_dim))
    generator = _generator(state.config, state.data_shape)
    return _activate(state, nets.in_chunks(lambda zs: generator.apply(state.params["generator"], zs, head), z))


@functools.partial(jax.jit, static_argnames="n")
def _sample_heads(state: State, key: jax.Array, n: int) -> jax.Array:
    cfg = state.config
    per_head = -(-n // cfg.num_heads)
    z = draws.normal(key, (cfg.num_heads, per_head, cfg.latent_dim))
    generator = _generator(cfg, state.data_shape)
    rows = max(1, nets.SAMPLE_ROWS // cfg.num_heads)  # codes per head in one chunk
    out = nets.in_chunks(lambda zs: jnp.swapaxes(generator.apply(state.params["generator"], jnp.swapaxes(zs, 0, 1)),
                                                 0, 1), jnp.swapaxes(z, 0, 1), rows=rows)  # [M, K, *shape]
    return _activate(state, out).reshape(-1, *state.data_shape)[:n]

"""Generative adversarial networks: two optax updates composed in one jitted step.

``train_step`` runs ``n_critic`` discriminator updates (each on its own real batch and key), then
one generator update against the updated discriminator, then the exponential moving average (EMA)
of the generator that ``sample`` uses by default. A batch therefore holds
``batch_rows(config) = n_critic * batch_size`` examples. Options: MLP or DCGAN-style conv networks,
spectral normalisation and maxout in the discriminator, BatchNorm in the generator (its running
statistics travel in ``state.extra``), PacGAN packing (``pack`` samples judged together), a
class-conditional generator with a projection discriminator (``num_classes`` > 0), and the losses
of :data:`genjax.nn.losses.GAN_LOSSES` with an optional R1 penalty.
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from genjax.core import config as cfg_lib
from genjax.core import optim
from genjax.core.errors import ConfigError
from genjax.core.state import State
from genjax.models import fields
from genjax.models.family import Batch, Capabilities, Metrics, batch_context, expect_config, expect_count
from genjax.nn import losses, nets

NAME = "gan"
DEFAULT_STEPS = 80_000  # what the scripts train for unless told otherwise
# Fields a sweep may vary in one program (genjax.train.sweep): a learning rate names the optimizers it drives.
SWEEPABLE = {"g_learning_rate": ("generator",), "d_learning_rate": ("discriminator",), "r1_weight": (),
             "gp_weight": (), "ema_decay": (), **optim.SWEEPABLE}
CAPABILITIES = Capabilities(samples=True, heads=True, labels=True)  # heads: the classes of a conditional GAN


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config(optim.OptimizerFields):
    """GAN hyperparameters; every field has a default (``dataclasses.replace`` to change). Both networks
    train with Adam at betas (beta1, beta2) on one schedule."""

    latent_dim: int = fields.LATENT_DIM(16, "size of z ~ N(0, I)")
    architecture: str = fields.ARCHITECTURE("mlp")
    hidden_dims: tuple[int, ...] = fields.HIDDEN_DIMS((128, 128, 128, 128), "generator MLP widths")
    d_hidden_dims: tuple[int, ...] = fields.HIDDEN_DIMS((128, 128), "discriminator MLP widths")
    conv_channels: tuple[int, ...] = fields.CONV_CHANNELS((32, 64), "discriminator conv channels (the generator "
                                                                    "mirrors them)")
    g_activation: str = fields.ACTIVATION("relu", "generator activation")
    d_activation: str = fields.ACTIVATION("leaky_relu", "discriminator activation")
    batch_norm: bool = cfg_lib.Spec("BatchNorm in the generator's hidden layers")(False)
    spectral_norm: bool = cfg_lib.Spec("spectral normalisation of every discriminator layer")(False)
    maxout_pieces: int = cfg_lib.Spec("> 1: a maxout discriminator with this many pieces (MLP only)",
                                      (cfg_lib.positive,))(1)
    loss: str = cfg_lib.Spec(f"adversarial loss: {', '.join(losses.GAN_LOSSES)}",
                             (cfg_lib.choice(losses.GAN_LOSSES),))("non_saturating")
    gp_weight: float = cfg_lib.Spec("gradient-penalty weight (wgan_gp only)", (cfg_lib.nonnegative,))(10.0)
    r1_weight: float = cfg_lib.Spec("R1 penalty weight gamma on real data (any loss; 0: off)",
                                    (cfg_lib.nonnegative,))(1.0)
    n_critic: int = cfg_lib.Spec("discriminator updates per generator update", (cfg_lib.positive,))(1)
    pack: int = cfg_lib.Spec("PacGAN: samples the discriminator judges together", (cfg_lib.positive,))(2)
    num_classes: int = cfg_lib.Spec("> 0: class-conditional generator and projection discriminator",
                                    (cfg_lib.nonnegative,))(0)
    output: str = fields.OUTPUT("auto")
    batch_size: int = fields.BATCH_SIZE(256, "real (and fake) examples per discriminator update")
    g_learning_rate: float = optim.LEARNING_RATE(2e-3, "generator's peak learning rate")
    d_learning_rate: float = optim.LEARNING_RATE(2e-3, "discriminator's peak learning rate")
    beta1: float = optim.BETA1(0.5)
    schedule: str = optim.SCHEDULE("cosine")
    ema_decay: float = cfg_lib.Spec("decay of the generator's EMA (0: the EMA equals the generator)",
                                    (cfg_lib.below_one,))(0.999)

    def check(self) -> None:
        if self.batch_size % self.pack:
            raise ConfigError(f"batch_size {self.batch_size} must be a multiple of pack {self.pack}")
        if self.pack > 1 and self.num_classes:
            raise ConfigError(f"pack={self.pack} and num_classes={self.num_classes} exclude each other (one label per "
                              "packed sample); set pack=1 for a class-conditional GAN")
        if self.maxout_pieces > 1 and self.architecture != "mlp":
            raise ConfigError("maxout_pieces > 1 needs architecture 'mlp'")


def batch_rows(cfg: Config) -> int:
    """Examples per ``train_step`` batch: one real batch per discriminator update."""
    return cfg.n_critic * cfg.batch_size


@functools.cache
def _networks(cfg: Config, data_shape: tuple[int, ...]) -> tuple[nets.Decoder, nets.Encoder]:
    generator = nets.Decoder(data_shape, cfg.architecture, cfg.hidden_dims, cfg.conv_channels, cfg.g_activation,
                             batch_norm=cfg.batch_norm, num_classes=cfg.num_classes)
    discriminator = nets.Encoder(1, cfg.architecture, cfg.d_hidden_dims, cfg.conv_channels, cfg.d_activation,
                                 spectral_norm=cfg.spectral_norm, maxout_pieces=cfg.maxout_pieces,
                                 num_classes=cfg.num_classes)
    return generator, discriminator


def pack(x: jax.Array, m: int) -> jax.Array:
    """PacGAN packing: ``[B, *shape] -> [B / m, m * D]`` (vectors) or ``[B / m, H, W, m * C]`` (images)."""
    if m == 1:
        return x
    grouped = x.reshape(x.shape[0] // m, m, *x.shape[1:])
    if x.ndim == 4:
        return jnp.moveaxis(grouped, 1, 3).reshape(*grouped.shape[:1], *x.shape[1:3], m * x.shape[3])
    return grouped.reshape(grouped.shape[0], -1)


def _apply(module, params, stats, *args, mutate: bool, **kwargs):
    """``module`` on ``args`` with its statistics (BatchNorm or spectral norm) when it has any;
    with ``mutate``, also returns them updated. Returns (outputs, statistics)."""
    variables = {"params": params, **({"batch_stats": stats} if stats else {})}
    if mutate and stats:
        out, updated = module.apply(variables, *args, mutable=["batch_stats"], **kwargs)
        return out, updated["batch_stats"]
    return module.apply(variables, *args, **kwargs), stats


def _generate(state: State, g_params, z, y, train: bool):
    """Generator outputs in data space and its (in training, updated) BatchNorm statistics."""
    generator, _ = _networks(state.config, state.data_shape)
    out, stats = _apply(generator, g_params, state.extra["g_stats"], z, y, train=train, mutate=train)
    return losses.activate(out, state.config.output), stats


def _critic(state: State, d_params, d_stats, x, y, update_stats: bool):
    """Discriminator outputs ``[N / pack, 1]`` on packed ``x`` and its spectral-norm statistics."""
    _, discriminator = _networks(state.config, state.data_shape)
    return _apply(discriminator, d_params, d_stats, x, y, update_stats=update_stats, mutate=update_stats)


def needs_labels(cfg: Config) -> bool:
    """A class-conditional GAN (``num_classes`` > 0) trains on ``batch['y']``."""
    return cfg.num_classes > 0


def num_heads(cfg: Config) -> int:
    """Class-specific samplers: the classes of a conditional GAN (0 when unconditional)."""
    return cfg.num_classes


def _check_labels(cfg: Config, batch: Batch) -> None:
    if needs_labels(cfg) and "y" not in batch:
        raise ConfigError(f"num_classes={cfg.num_classes} (class-conditional) needs labels: batch['y']")


def init(key: jax.Array, cfg: Config, batch: Batch) -> State:
    """A fresh state; shapes come from the example ``batch['x']`` ``[N, *data_shape]``."""
    expect_config(cfg, Config, NAME)
    data_shape = nets.check_batch(cfg.architecture, batch)
    _check_labels(cfg, batch)
    cfg = cfg.resolved(batch_context(batch, data_shape, DEFAULT_STEPS))
    if cfg.num_classes and int(np.max(batch["y"])) >= cfg.num_classes:
        raise ConfigError(f"labels reach {int(np.max(batch['y']))} but num_classes is {cfg.num_classes}")
    losses.check_output_range(cfg.output, np.asarray(batch["x"]))
    generator, discriminator = _networks(cfg, data_shape)
    k_g, k_d = jax.random.split(key)
    z = jnp.zeros((cfg.pack, cfg.latent_dim))  # one packed example (conditional models have pack 1)
    y = jnp.zeros((cfg.pack,), jnp.int32) if cfg.num_classes else None
    g_vars = nets.init_variables(generator, k_g, z, y)
    d_vars = nets.init_variables(discriminator, k_d, pack(jnp.zeros((cfg.pack, *data_shape)), cfg.pack), y)
    params = {"generator": g_vars["params"], "discriminator": d_vars["params"]}
    optimizers = {"generator": optim.adam(cfg, cfg.g_learning_rate),
                  "discriminator": optim.adam(cfg, cfg.d_learning_rate)}
    extra = {"g_ema": jax.tree.map(jnp.copy, params["generator"]), "g_stats": g_vars.get("batch_stats", {}),
             "d_stats": d_vars.get("batch_stats", {})}
    return State.create(params=params, optimizers=optimizers, config=cfg, data_shape=data_shape, extra=extra)


def _fake_labels(cfg: Config, y_real):
    """Labels for generated samples: the real batch's (so the class mix matches the data), or None."""
    return y_real if cfg.num_classes else None


def discriminator_update(state: State, x_real: jax.Array, y_real: jax.Array, key: jax.Array) -> tuple[State, Metrics]:
    """One discriminator Adam step on one real batch against the state's generator; ``step`` is left alone.

    ``x_real`` ``[batch_size, *data_shape]``, ``y_real`` its labels ``[batch_size]`` (or an empty array
    when unconditional). Returns the state and this update's metrics.
    """
    cfg = state.config
    k_z, k_gp = jax.random.split(key)
    y = _fake_labels(cfg, y_real)
    z = jax.random.normal(k_z, (cfg.batch_size, cfg.latent_dim))
    fake = jax.lax.stop_gradient(_generate(state, state.params["generator"], z, y, train=True)[0])
    real_p, fake_p = pack(x_real, cfg.pack), pack(fake, cfg.pack)
    d_loss_fn, _ = losses.GAN_LOSSES[cfg.loss]
    d_stats = state.extra["d_stats"]

    def loss_fn(params):
        both = jnp.concatenate([real_p, fake_p])
        scores, new_stats = _critic(state, params, d_stats, both, None if y is None else jnp.concatenate([y, y]),
                                    update_stats=True)
        d_real, d_fake = jnp.split(scores, 2)
        loss = d_loss_fn(d_real, d_fake)

        def critic(v):
            return _critic(state, params, new_stats, v, y, update_stats=False)[0]

        if cfg.loss == "wgan_gp":
            loss = loss + state.hp("gp_weight") * losses.gradient_penalty(critic, real_p, fake_p, k_gp)
        if cfg.r1_weight:
            loss = loss + state.hp("r1_weight") * losses.r1_penalty(critic, real_p)
        return loss, (new_stats, {"d_loss": loss, "d_real": jnp.mean(d_real), "d_fake": jnp.mean(d_fake)})

    (_, (d_stats, step_metrics)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params["discriminator"])
    state = state.update("discriminator", grads)
    return state.replace(extra={**state.extra, "d_stats": d_stats}), step_metrics


def generator_update(state: State, y: jax.Array | None, key: jax.Array) -> tuple[State, jax.Array]:
    """One generator Adam step against the state's discriminator, which completes the train step
    (``step`` + 1), then the EMA; returns (state, g_loss).

    ``y`` ``[batch_size]``: labels of the generated batch (class-conditional models), else None.
    """
    cfg = state.config
    _, g_loss_fn = losses.GAN_LOSSES[cfg.loss]
    z = jax.random.normal(key, (cfg.batch_size, cfg.latent_dim))
    d_params, d_stats = state.params["discriminator"], state.extra["d_stats"]

    def loss_fn(g_params):
        fake, g_stats = _generate(state, g_params, z, y, train=True)
        scores, _ = _critic(state, d_params, d_stats, pack(fake, cfg.pack), y, update_stats=False)
        return g_loss_fn(scores), g_stats

    (g_loss, g_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params["generator"])
    state = state.apply_gradients({"generator": grads})
    ema = optax.incremental_update(state.params["generator"], state.extra["g_ema"], 1.0 - state.hp("ema_decay"))
    return state.replace(extra={**state.extra, "g_ema": ema, "g_stats": g_stats}), g_loss


@jax.jit
def train_step(state: State, batch: Batch, key: jax.Array) -> tuple[State, Metrics]:
    """``n_critic`` discriminator updates, then one generator update, then the generator EMA.

    ``batch['x']`` is ``[n_critic * batch_size, *data_shape]`` (``batch['y']`` ``[n_critic * batch_size]``
    when class-conditional). Sub-step keys: ``fold_in(key, i)`` for discriminator update ``i``,
    ``fold_in(key, n_critic)`` for the generator. Metrics: ``d_loss`` (mean over the discriminator
    updates, penalties included), ``g_loss``, ``loss`` (their sum, watched for divergence),
    ``d_real`` and ``d_fake`` (mean discriminator outputs). Pure; compiles once per batch shape.
    """
    cfg = state.config
    expect_config(cfg, Config, NAME)
    nets.check_batch(cfg.architecture, batch, state.data_shape)
    _check_labels(cfg, batch)
    if batch["x"].shape[0] != batch_rows(cfg):
        raise ConfigError(f"a GAN batch holds n_critic * batch_size = {batch_rows(cfg)} examples, "
                          f"got {batch['x'].shape[0]}")
    x = batch["x"].reshape(cfg.n_critic, cfg.batch_size, *state.data_shape)
    y = batch["y"].reshape(cfg.n_critic, cfg.batch_size) if cfg.num_classes else jnp.zeros((cfg.n_critic, 0))
    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(cfg.n_critic))
    state, d_metrics = jax.lax.scan(lambda s, inputs: discriminator_update(s, *inputs), state, (x, y, keys))
    state, g_loss = generator_update(state, _fake_labels(cfg, y[-1]), jax.random.fold_in(key, cfg.n_critic))
    d_means = {k: jnp.mean(v) for k, v in d_metrics.items()}
    return state, {**d_means, "g_loss": g_loss, "loss": d_means["d_loss"] + g_loss}


def sample(state: State, key: jax.Array, n: int, y: jax.Array | None = None, use_ema: bool = True,
           head: int | None = None) -> jax.Array:
    """``n`` samples ``[n, *data_shape]`` in data space from the EMA generator (or the raw one).

    Class-conditional models take labels ``y`` ``[n]``, or ``head=k`` for ``n`` samples of class ``k``
    (default: classes in turn, ``i % num_classes``). One compile serves every class.
    """
    expect_config(state.config, Config, NAME)
    expect_count(n)
    if head is not None:
        if not 0 <= head < state.config.num_classes:
            raise ConfigError(f"class {head} does not exist; valid classes: 0..{state.config.num_classes - 1}")
        y = jnp.full((n,), head, jnp.int32)
    return _sample(state, key, n, y, use_ema)


@functools.partial(jax.jit, static_argnames=("n", "use_ema"))
def _sample(state: State, key: jax.Array, n: int, y: jax.Array | None, use_ema: bool) -> jax.Array:
    cfg = state.config
    if cfg.num_classes and y is None:
        y = jnp.arange(n) % cfg.num_classes
    z = jax.random.normal(key, (n, cfg.latent_dim))
    params = state.extra["g_ema"] if use_ema else state.params["generator"]
    if not cfg.num_classes:
        return nets.in_chunks(lambda zs: _generate(state, params, zs, None, train=False)[0], z)
    return nets.in_chunks(lambda zs, ys: _generate(state, params, zs, ys, train=False)[0], z, y)

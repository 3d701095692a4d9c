"""Generative adversarial networks: two optax updates composed in one jitted step.

``train_step`` runs ``n_critic`` discriminator updates (each on its own real batch and key), then
one generator update against the updated discriminator, then the exponential moving average (EMA)
of the generator that ``sample`` uses by default. A batch therefore holds
``batch_rows(config) = n_critic * batch_size`` examples. Options: MLP or DCGAN-style conv networks,
spectral normalisation and maxout in the discriminator, BatchNorm in the generator (its running
statistics travel in ``state.extra``), PacGAN packing (``pack`` samples judged together), a
class-conditional generator with a projection discriminator (``num_classes`` > 0), and the losses
of :data:`genjax.losses.GAN_LOSSES` with an optional R1 penalty.
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


@dataclasses.dataclass(frozen=True)
class Config:
    """GAN hyperparameters; every field has a default (``dataclasses.replace`` to change)."""

    latent_dim: int = 16  # z ~ N(0, I_latent_dim)
    architecture: str = "mlp"  # "mlp" or "conv" (DCGAN-style; images only)
    hidden_dims: tuple[int, ...] = (128, 128, 128, 128)  # generator MLP widths
    d_hidden_dims: tuple[int, ...] = (128, 128)  # discriminator MLP widths
    conv_channels: tuple[int, ...] = (32, 64)  # discriminator channels; the generator mirrors them
    g_activation: str = "relu"
    d_activation: str = "leaky_relu"
    batch_norm: bool = False  # BatchNorm in the generator's hidden layers
    spectral_norm: bool = False  # spectral normalisation of every discriminator layer
    maxout_pieces: int = 1  # > 1: maxout discriminator (MLP only)
    loss: str = "non_saturating"  # minimax, non_saturating, wgan_gp, hinge, least_squares
    gp_weight: float = 10.0  # gradient-penalty weight (wgan_gp only)
    r1_weight: float = 1.0  # R1 penalty weight gamma on real data (any loss; 0 turns it off)
    n_critic: int = 1  # discriminator updates per generator update
    pack: int = 2  # PacGAN: samples judged together by the discriminator
    num_classes: int = 0  # > 0: class-conditional generator and projection discriminator
    output: str = "auto"  # "auto" (sigmoid for images, linear for vectors), "sigmoid", "linear"
    batch_size: int = 256  # real (and fake) examples per discriminator update
    g_learning_rate: float = 2e-3  # Adam peak learning rates
    d_learning_rate: float = 2e-3
    beta1: float = 0.5  # Adam betas, both networks
    beta2: float = 0.999
    schedule: str = "cosine"  # learning-rate schedule of both optimizers: constant, cosine, warmup_cosine
    decay_steps: int = 0  # cosine length; 0: the run's (genjax.fit), or DEFAULT_STEPS
    warmup_steps: int = 0
    ema_decay: float = 0.999  # generator EMA; 0 keeps the EMA equal to the generator

    def __post_init__(self):
        cfg_lib.require_types(self)
        cfg_lib.require_positive(self, "latent_dim", "batch_size", "g_learning_rate", "d_learning_rate",
                                 "n_critic", "pack", "maxout_pieces")
        cfg_lib.require_nonnegative(self, "gp_weight", "r1_weight", "num_classes", "warmup_steps", "decay_steps")
        cfg_lib.require_choice(self, "architecture", nets.ARCHITECTURES)
        cfg_lib.require_choice(self, "g_activation", nets.ACTIVATIONS)
        cfg_lib.require_choice(self, "d_activation", nets.ACTIVATIONS)
        cfg_lib.require_choice(self, "loss", losses.GAN_LOSSES)
        cfg_lib.require_choice(self, "output", losses.OUTPUTS)
        optim.validate_schedule(self)
        for name in ("hidden_dims", "d_hidden_dims", "conv_channels"):
            cfg_lib.require_widths(self, name)
        for name in ("beta1", "beta2", "ema_decay"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"{name} must lie in [0, 1), got {getattr(self, name)}")
        if self.batch_size % self.pack:
            raise ConfigError(f"batch_size {self.batch_size} must be a multiple of pack {self.pack}")
        if self.pack > 1 and self.num_classes:
            raise ConfigError(f"pack={self.pack} and num_classes={self.num_classes} exclude each other (one label per "
                              "packed sample); set pack=1 for a class-conditional GAN")
        if self.maxout_pieces > 1 and self.architecture != "mlp":
            raise ConfigError("maxout_pieces > 1 needs architecture 'mlp'")


DEFAULT_STEPS = 80_000  # what experiments.train and experiments.mode_coverage run unless told otherwise
PRESETS = {
    # Lin et al. 2018 (PacGAN), 2-D experiments: G 2-400x4-2 with BatchNorm, maxout D 200x3 (5 pieces),
    # Adam lr 1e-4, beta1 0.8, batch 100, no penalty, no EMA; pack=1 is their plain GAN (--set pack=2..4).
    "pacgan": Config(latent_dim=2, hidden_dims=(400, 400, 400, 400), d_hidden_dims=(200, 200, 200),
                     maxout_pieces=5, batch_norm=True, loss="non_saturating", r1_weight=0.0, pack=1,
                     batch_size=100, g_learning_rate=1e-4, d_learning_rate=1e-4, beta1=0.8,
                     schedule="constant", ema_decay=0.0),
}


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


@functools.cache
def _optimizers(cfg: Config) -> tuple[optax.GradientTransformation, optax.GradientTransformation]:
    def adam(lr):
        return optim.adam(cfg, lr, DEFAULT_STEPS, b1=cfg.beta1, b2=cfg.beta2)

    return adam(cfg.g_learning_rate), adam(cfg.d_learning_rate)


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
    return losses.activate(out, losses.output_activation(state.config.output, state.data_shape)), stats


def _critic(state: State, d_params, d_stats, x, y, update_stats: bool):
    """Discriminator outputs ``[N / pack, 1]`` on packed ``x`` and its spectral-norm statistics."""
    _, discriminator = _networks(state.config, state.data_shape)
    return _apply(discriminator, d_params, d_stats, x, y, update_stats=update_stats, mutate=update_stats)


def _check_labels(cfg: Config, batch: dict) -> None:
    if cfg.num_classes and "y" not in batch:
        raise ConfigError(f"num_classes={cfg.num_classes} (class-conditional) needs labels: batch['y']")


def init(key: jax.Array, cfg: Config, batch: dict) -> State:
    """A fresh state; shapes come from the example ``batch['x']`` ``[N, *data_shape]``."""
    data_shape = nets.check_batch(cfg.architecture, batch)
    _check_labels(cfg, batch)
    if cfg.num_classes and int(np.max(batch["y"])) >= cfg.num_classes:
        raise ConfigError(f"labels reach {int(np.max(batch['y']))} but num_classes is {cfg.num_classes}")
    losses.check_output_range(cfg.output, data_shape, np.asarray(batch["x"]))
    generator, discriminator = _networks(cfg, data_shape)
    k_g, k_d = jax.random.split(key)
    z = jnp.zeros((cfg.pack, cfg.latent_dim))  # one packed example (conditional models have pack 1)
    y = jnp.zeros((cfg.pack,), jnp.int32) if cfg.num_classes else None
    g_vars = generator.init(k_g, z, y)
    d_vars = discriminator.init(k_d, pack(jnp.zeros((cfg.pack, *data_shape)), cfg.pack), y)
    params = {"generator": g_vars["params"], "discriminator": d_vars["params"]}
    g_tx, d_tx = _optimizers(cfg)
    return State(
        step=jnp.zeros((), jnp.int32),
        params=params,
        opt_state={"generator": g_tx.init(params["generator"]), "discriminator": d_tx.init(params["discriminator"])},
        extra={"g_ema": jax.tree.map(jnp.copy, params["generator"]), "g_stats": g_vars.get("batch_stats", {}),
               "d_stats": d_vars.get("batch_stats", {})},
        config=cfg,
        data_shape=data_shape,
    )


def _fake_labels(cfg: Config, y_real):
    """Labels for generated samples: the real batch's (so the class mix matches the data), or None."""
    return y_real if cfg.num_classes else None


def discriminator_update(state: State, carry, inputs):
    """One discriminator Adam step on one real batch against the state's generator.

    ``carry`` = (d_params, d_opt, d_stats); ``inputs`` = (x_real ``[batch_size, *data_shape]``, labels
    ``[batch_size]`` or an empty array, key). Returns the new carry and this update's metrics.
    """
    cfg = state.config
    d_params, d_opt, d_stats = carry
    x_real, y_real, key = inputs
    k_z, k_gp = jax.random.split(key)
    y = _fake_labels(cfg, y_real)
    z = jax.random.normal(k_z, (cfg.batch_size, cfg.latent_dim))
    fake = jax.lax.stop_gradient(_generate(state, state.params["generator"], z, y, train=True)[0])
    real_p, fake_p = pack(x_real, cfg.pack), pack(fake, cfg.pack)
    d_loss_fn, _ = losses.GAN_LOSSES[cfg.loss]

    def loss_fn(params):
        both = jnp.concatenate([real_p, fake_p])
        scores, new_stats = _critic(state, params, d_stats, both, None if y is None else jnp.concatenate([y, y]),
                                    update_stats=True)
        d_real, d_fake = jnp.split(scores, 2)
        loss = d_loss_fn(d_real, d_fake)

        def critic(v):
            return _critic(state, params, new_stats, v, y, update_stats=False)[0]

        if cfg.loss == "wgan_gp":
            loss = loss + cfg.gp_weight * losses.gradient_penalty(critic, real_p, fake_p, k_gp)
        if cfg.r1_weight:
            loss = loss + cfg.r1_weight * losses.r1_penalty(critic, real_p)
        return loss, (new_stats, {"d_loss": loss, "d_real": jnp.mean(d_real), "d_fake": jnp.mean(d_fake)})

    (_, (d_stats, step_metrics)), grads = jax.value_and_grad(loss_fn, has_aux=True)(d_params)
    updates, d_opt = _optimizers(cfg)[1].update(grads, d_opt, d_params)
    return (optax.apply_updates(d_params, updates), d_opt, d_stats), step_metrics


@jax.jit
def train_step(state: State, batch: dict, key: jax.Array) -> tuple[State, dict]:
    """``n_critic`` discriminator updates, then one generator update, then the generator EMA.

    ``batch['x']`` is ``[n_critic * batch_size, *data_shape]`` (``batch['y']`` ``[n_critic * batch_size]``
    when class-conditional). Sub-step keys: ``fold_in(key, i)`` for discriminator update ``i``,
    ``fold_in(key, n_critic)`` for the generator. Metrics: ``d_loss`` (mean over the discriminator
    updates, penalties included), ``g_loss``, ``loss`` (their sum, watched for divergence),
    ``d_real`` and ``d_fake`` (mean discriminator outputs). Pure; compiles once per batch shape.
    """
    cfg = state.config
    nets.check_batch(cfg.architecture, batch, state.data_shape)
    _check_labels(cfg, batch)
    if batch["x"].shape[0] != batch_rows(cfg):
        raise ConfigError(f"a GAN batch holds n_critic * batch_size = {batch_rows(cfg)} examples, "
                          f"got {batch['x'].shape[0]}")
    x = batch["x"].reshape(cfg.n_critic, cfg.batch_size, *state.data_shape)
    y = batch["y"].reshape(cfg.n_critic, cfg.batch_size) if cfg.num_classes else jnp.zeros((cfg.n_critic, 0))
    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(cfg.n_critic))
    carry = (state.params["discriminator"], state.opt_state["discriminator"], state.extra["d_stats"])
    (d_params, d_opt, d_stats), d_metrics = jax.lax.scan(
        lambda c, inputs: discriminator_update(state, c, inputs), carry, (x, y, keys)
    )

    state = state.replace(params={**state.params, "discriminator": d_params},
                          opt_state={**state.opt_state, "discriminator": d_opt},
                          extra={**state.extra, "d_stats": d_stats})
    state, g_loss = generator_update(state, _fake_labels(cfg, y[-1]), jax.random.fold_in(key, cfg.n_critic))
    d_means = {k: jnp.mean(v) for k, v in d_metrics.items()}
    return state.replace(step=state.step + 1), {**d_means, "g_loss": g_loss, "loss": d_means["d_loss"] + g_loss}


def generator_update(state: State, y: jax.Array | None, key: jax.Array) -> tuple[State, jax.Array]:
    """One generator Adam step against the state's discriminator, then the EMA; returns (state, g_loss).

    ``y`` ``[batch_size]``: labels of the generated batch (class-conditional models), else None.
    The step count is left alone (``train_step`` advances it once per whole step).
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
    updates, g_opt = _optimizers(cfg)[0].update(grads, state.opt_state["generator"], state.params["generator"])
    g_params = optax.apply_updates(state.params["generator"], updates)
    ema = optax.incremental_update(g_params, state.extra["g_ema"], 1.0 - cfg.ema_decay)
    return state.replace(params={**state.params, "generator": g_params},
                         opt_state={**state.opt_state, "generator": g_opt},
                         extra={**state.extra, "g_ema": ema, "g_stats": g_stats}), g_loss


@functools.partial(jax.jit, static_argnames=("n", "use_ema"))
def sample(state: State, key: jax.Array, n: int, y: jax.Array | None = None, use_ema: bool = True) -> jax.Array:
    """``n`` samples ``[n, *data_shape]`` in data space from the EMA generator (or the raw one).

    Class-conditional models take labels ``y`` ``[n]`` (default: classes in turn, ``i % num_classes``).
    """
    cfg = state.config
    if cfg.num_classes and y is None:
        y = jnp.arange(n) % cfg.num_classes
    z = jax.random.normal(key, (n, cfg.latent_dim))
    params = state.extra["g_ema"] if use_ema else state.params["generator"]
    return _generate(state, params, z, y if cfg.num_classes else None, train=False)[0]


def evaluate(state: State, dataset: Dataset, full: bool = True) -> dict[str, float | None]:
    """Sample-quality measures of :func:`genjax.metrics.sample_report` on 2,500 EMA samples (seed 0)."""
    samples = np.asarray(sample(state, jax.random.key(0), metrics.EVAL_SAMPLES))
    return metrics.sample_report(samples, dataset, full)


def write_figures(state: State, dataset: Dataset, workdir: Path) -> list[Path]:
    """``samples.png``: an image grid (a row per class when conditional), or a scatter over the data."""
    rows = state.config.num_classes or 8
    samples = np.asarray(sample(state, jax.random.key(1), 8 * rows if dataset.is_image else metrics.EVAL_SAMPLES))
    path = Path(workdir) / "samples.png"
    if dataset.is_image:
        order = np.argsort(np.arange(len(samples)) % rows, kind="stable") if state.config.num_classes else None
        return [plots.image_grid(samples if order is None else samples[order], path, rows=rows)]
    return [plots.scatter(samples, path, dataset.x_test, dataset.modes)]

"""What the encoder-decoder families (autoencoder, VAE) share: their config fields and their init."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from genjax.core import config as cfg_lib
from genjax.core import optim
from genjax.core.errors import ConfigError
from genjax.core.state import State
from genjax.models import fields
from genjax.models.family import Batch, batch_context
from genjax.nn import losses, nets


def _bce_needs_sigmoid(name: str, value: str, config: CoderConfig) -> None:
    if value == "bce" and config.output == "linear":
        raise ConfigError("loss 'bce' needs sigmoid outputs (data in [0, 1]); vectors train with loss 'mse' and "
                          "output 'linear'")


LOSS = cfg_lib.Spec("reconstruction term: mse on the outputs, or bce on their logits (data in [0, 1])",
                    (cfg_lib.choice(losses.RECONSTRUCTION_LOSSES), _bce_needs_sigmoid))


@dataclasses.dataclass(frozen=True, kw_only=True)
class CoderConfig(optim.OptimizerFields):
    """Fields of every encoder-decoder family; the decoder mirrors the encoder's widths."""

    latent_dim: int = fields.LATENT_DIM(8)
    architecture: str = fields.AUTO_ARCHITECTURE("auto")
    hidden_dims: tuple[int, ...] = fields.HIDDEN_DIMS((256, 128), "encoder MLP widths (the decoder mirrors them)")
    conv_channels: tuple[int, ...] = fields.CONV_CHANNELS((32, 64))
    activation: str = fields.ACTIVATION("relu")
    loss: str = LOSS("mse")
    output: str = fields.OUTPUT("auto")
    batch_size: int = fields.BATCH_SIZE(128)
    learning_rate: float = optim.LEARNING_RATE(1e-3)


Networks = Callable[[CoderConfig, tuple[int, ...]], tuple[nets.Encoder, nets.Decoder]]


def init(key: jax.Array, cfg: CoderConfig, batch: Batch, networks: Networks, default_steps: int) -> State:
    """A state holding an encoder and a decoder, each with its own Adam state: checks the batch and the
    output range, resolves the placeholders (a run of ``default_steps``), then initialises
    ``networks(cfg, data_shape)``."""
    data_shape = nets.check_batch(cfg.architecture, batch)
    cfg = cfg.resolved(batch_context(batch, data_shape, default_steps))
    nets.check_batch(cfg.architecture, batch)
    x = np.asarray(batch["x"])
    losses.check_output_range(cfg.output, x)
    encoder, decoder = networks(cfg, data_shape)
    k_enc, k_dec = jax.random.split(key)
    params = {"encoder": nets.init_variables(encoder, k_enc, jnp.asarray(x[:1])),
              "decoder": nets.init_variables(decoder, k_dec, jnp.zeros((1, cfg.latent_dim)))}
    tx = optim.adam(cfg, cfg.learning_rate)
    return State.create(params=params, optimizers={"encoder": tx, "decoder": tx}, config=cfg, data_shape=data_shape)

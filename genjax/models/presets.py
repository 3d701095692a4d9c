"""Named configs, in one place: every script takes ``--preset NAME`` and starts from it instead of the
family's defaults (``--set`` still applies on top). Some presets are the scripts' defaults for a kind of
data (:func:`for_data`): a GAN on images of 16x16 pixels and up starts from ``dcgan`` unless another
preset, or ``--preset none`` (the family's own defaults), is named; a VAE starts from ``conv_vae``."""
from __future__ import annotations

import dataclasses
from typing import Any

from genjax.core.errors import ConfigError
from genjax.models import dgn, gan, vae
from genjax.nn import nets

NONE = "none"  # --preset none: the family's own defaults, whatever the data


@dataclasses.dataclass(frozen=True)
class Preset:
    name: str
    model: str  # the family it configures
    config: Any
    summary: str  # one line: where the settings come from
    steps: int | None = None  # the scripts' default run length with this preset (None: the family's)


PRESETS = {p.name: p for p in (
    Preset("pacgan", "gan", gan.Config(
        latent_dim=2, hidden_dims=(400, 400, 400, 400), d_hidden_dims=(200, 200, 200), maxout_pieces=5,
        batch_norm=True, loss="non_saturating", r1_weight=0.0, pack=1, batch_size=100, g_learning_rate=1e-4,
        d_learning_rate=1e-4, beta1=0.8, schedule="constant", ema_decay=0.0),
        "Lin et al. 2018 (PacGAN), 2-D experiments: G 2-400x4-2 with BatchNorm, maxout D 200x3 (5 pieces), Adam "
        "1e-4, beta1 0.8, batch 100, no penalty, no EMA; pack 1 is their plain GAN (--set pack=2..4)"),
    Preset("wgan_gp", "gan", gan.Config(
        loss="wgan_gp", r1_weight=0.0, n_critic=5, pack=1, g_learning_rate=1e-4, d_learning_rate=1e-4, beta2=0.9,
        schedule="constant"),
        "Gulrajani et al. 2017: 5 critic updates per generator update, Adam 1e-4 (0.5, 0.9), gradient penalty 10"),
    Preset("mixture2d", "dgn", dgn.Config(latent_dim=2, num_heads=1),
           "2-D mixtures: one head and a 2-D latent (16 latent dimensions blur the grid's modes)"),
    Preset("dcgan", "gan", gan.Config(
        architecture="conv", hidden_dims=(), d_hidden_dims=(), conv_channels=(64, 128), batch_norm=True, pack=1,
        batch_size=64, g_learning_rate=2e-4, d_learning_rate=2e-4),
        "DCGAN-style (Radford et al. 2016) for images: G dense to 7x7x128, transposed convs 64-1 with BatchNorm; D "
        "stride-2 convs 64-128, leaky ReLU; Adam 2e-4 (0.5, 0.999), batch 64, R1 1, EMA 0.999; 10,000 steps",
        steps=10_000),
    Preset("conv_vae", "vae", vae.Config(latent_dim=32, iwae_samples=16),
           "VAE for images: conv encoder and decoder, latent 32, 5,000 steps; the evaluation's importance-weighted "
           "bound with 16 draws per test image (64 took 4 minutes on Fashion-MNIST's 10,000)", steps=5000),
    Preset("bench_gan_small", "gan", gan.Config(hidden_dims=(64, 64), d_hidden_dims=(64, 64), batch_size=64),
           "the throughput benchmark's small GAN: widths 64, batch 64"),
    Preset("bench_gan_large", "gan", gan.Config(hidden_dims=(1024, 1024), d_hidden_dims=(1024, 1024),
                                                batch_size=512),
           "the throughput benchmark's large GAN: widths 1024, batch 512"),
)}


FOR_IMAGES = {"gan": "dcgan", "vae": "conv_vae"}  # the default preset of a family on images that conv networks fit


def for_data(model: str, data_shape: tuple[int, ...]) -> Preset | None:
    """The preset the scripts start ``model`` from on examples of ``data_shape`` when none is named:
    :data:`FOR_IMAGES` for images that ``architecture="auto"`` would give conv networks, else None."""
    name = FOR_IMAGES.get(model)
    if name is None or nets.default_architecture(data_shape, len(PRESETS[name].config.conv_channels)) != "conv":
        return None
    return PRESETS[name]


def names(model: str | None = None) -> tuple[str, ...]:
    """The preset names (of one family's presets, given ``model``)."""
    return tuple(name for name, p in PRESETS.items() if model is None or p.model == model)


def get(name: str, model: str | None = None) -> Preset:
    """The preset ``name`` (which must configure ``model``, when given); ConfigError listing the valid names."""
    valid = names(model)
    if name not in valid:
        valid = (*valid, NONE)
        scope = f" for {model}" if model else ""
        raise ConfigError(f"unknown preset {name!r}{scope}; valid choices: {', '.join(valid) or 'none'}")
    return PRESETS[name]

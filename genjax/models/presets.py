"""Named configs, in one place: every script takes ``--preset NAME`` and starts from it instead of the
family's defaults (``--set`` still applies on top)."""
from __future__ import annotations

import dataclasses
from typing import Any

from genjax.core.errors import ConfigError
from genjax.models import dgn, gan


@dataclasses.dataclass(frozen=True)
class Preset:
    name: str
    model: str  # the family it configures
    config: Any
    summary: str  # one line: where the settings come from


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
    Preset("bench_gan_small", "gan", gan.Config(hidden_dims=(64, 64), d_hidden_dims=(64, 64), batch_size=64),
           "the throughput benchmark's small GAN: widths 64, batch 64"),
    Preset("bench_gan_large", "gan", gan.Config(hidden_dims=(1024, 1024), d_hidden_dims=(1024, 1024),
                                                batch_size=512),
           "the throughput benchmark's large GAN: widths 1024, batch 512"),
)}


def names(model: str | None = None) -> tuple[str, ...]:
    """The preset names (of one family's presets, given ``model``)."""
    return tuple(name for name, p in PRESETS.items() if model is None or p.model == model)


def get(name: str, model: str | None = None) -> Preset:
    """The preset ``name`` (which must configure ``model``, when given); ConfigError listing the valid names."""
    valid = names(model)
    if name not in valid:
        scope = f" for {model}" if model else ""
        raise ConfigError(f"unknown preset {name!r}{scope}; valid choices: {', '.join(valid) or 'none'}")
    return PRESETS[name]

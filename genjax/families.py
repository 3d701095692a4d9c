"""The model families by name, imported on demand."""
from __future__ import annotations

import importlib
from types import ModuleType

from genjax.errors import ConfigError

NAMES = ("autoencoder", "vae", "gan", "dgn")


def get(name: str) -> ModuleType:
    """The family module ``genjax.<name>``; ConfigError for an unknown name."""
    if name not in NAMES:
        raise ConfigError(f"unknown model {name!r}; valid choices: {', '.join(NAMES)}")
    return importlib.import_module(f"genjax.{name}")


def name_of(family: ModuleType) -> str:
    return family.__name__.rsplit(".", 1)[-1]

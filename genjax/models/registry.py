"""The families by name: the built-in ones, imported on demand, and any that research code registers.

Adding a family is one module (see docs/ARCHITECTURE.md) plus one entry in :data:`BUILTIN`, or a call
of :func:`register` from your own code. The registry checks a family against the contract in
:mod:`genjax.models.family` once, when it first hands it out; nothing else needs to probe a family.
"""
from __future__ import annotations

import importlib
from typing import Any

from genjax.core.errors import ConfigError
from genjax.models.family import PROVIDES, REQUIRED, Capabilities, Family

BUILTIN = {  # name -> module
    "autoencoder": "genjax.models.autoencoder",
    "vae": "genjax.models.vae",
    "gan": "genjax.models.gan",
    "dgn": "genjax.models.dgn",
}
_registered: dict[str, Family] = {}


def names() -> tuple[str, ...]:
    """Every family name: the built-in ones, then the registered ones."""
    return (*BUILTIN, *_registered)


def check(family: Any) -> Family:
    """``family`` if it keeps the contract; TypeError naming what is missing otherwise."""
    missing = [name for name in REQUIRED if not hasattr(family, name)]
    if not missing:
        if not isinstance(family.CAPABILITIES, Capabilities):
            raise TypeError(f"family {family.NAME!r}: CAPABILITIES must be a genjax.models.family.Capabilities")
        missing = [f"{name} (for {capability})" for capability in family.CAPABILITIES.declared()
                   for name in PROVIDES[capability] if not hasattr(family, name)]
    if missing:
        label = getattr(family, "NAME", family)
        raise TypeError(f"family {label!r} does not keep the contract: missing {', '.join(missing)}")
    return family


def register(family: Any) -> Family:
    """Make ``family`` available by its ``NAME`` to ``genjax.fit``, ``load_run`` and every script."""
    check(family)
    if family.NAME in names() and get(family.NAME) is not family:
        raise ConfigError(f"a family named {family.NAME!r} is registered already")
    _registered[family.NAME] = family
    return family


def unregister(name: str) -> None:
    """Forget a family added by :func:`register` (the built-in ones stay)."""
    _registered.pop(name, None)


def get(name: str) -> Family:
    """The family called ``name``; ConfigError listing the valid names for an unknown one."""
    if name in _registered:
        return _registered[name]
    if name not in BUILTIN:
        raise ConfigError(f"unknown model {name!r}; valid choices: {', '.join(names())}")
    return check(importlib.import_module(BUILTIN[name]))


def family_of(config: Any) -> Family:
    """The family whose ``Config`` ``config`` is (ConfigError when no known family's is)."""
    for name in names():
        if type(config) is get(name).Config:
            return get(name)
    raise ConfigError(f"no registered family has the config type {type(config).__name__}")


def lookup(family: Family | str) -> Family:
    """A family given by name, or itself once :func:`check` passes."""
    return get(family) if isinstance(family, str) else check(family)

"""Validation and command-line overrides for the frozen ``Config`` dataclasses of every family."""
from __future__ import annotations

import dataclasses
import typing
from typing import Any, Iterable

from genjax.errors import ConfigError


def require_positive(cfg: Any, *names: str) -> None:
    """Raise ConfigError unless every named field is > 0."""
    for name in names:
        value = getattr(cfg, name)
        if not value > 0:
            raise ConfigError(f"{name} must be > 0, got {value!r}")


def require_nonnegative(cfg: Any, *names: str) -> None:
    """Raise ConfigError unless every named field is >= 0."""
    for name in names:
        value = getattr(cfg, name)
        if not value >= 0:
            raise ConfigError(f"{name} must be >= 0, got {value!r}")


def require_choice(cfg: Any, name: str, choices: Iterable[str]) -> None:
    """Raise ConfigError unless the field is one of ``choices``."""
    choices = tuple(choices)
    value = getattr(cfg, name)
    if value not in choices:
        raise ConfigError(f"unknown {name} {value!r}; valid choices: {', '.join(choices)}")


def require_widths(cfg: Any, name: str, allow_empty: bool = False) -> None:
    """Raise ConfigError unless the field is a tuple of positive ints (non-empty unless ``allow_empty``)."""
    value = getattr(cfg, name)
    if not (isinstance(value, tuple) and (value or allow_empty) and all(isinstance(w, int) and w > 0 for w in value)):
        kind = "a tuple" if allow_empty else "a non-empty tuple"
        raise ConfigError(f"{name} must be {kind} of positive ints, got {value!r}")


def require_types(cfg: Any) -> None:
    """Raise ConfigError unless every field of the dataclass instance holds a value of its annotated type."""
    coerce(type(cfg), dataclasses.asdict(cfg))


def field_types(cls: type) -> dict[str, Any]:
    """Map each field of the dataclass ``cls`` to its resolved type annotation."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _convert(name: str, text: str, kind: Any) -> Any:
    """Parse the string ``text`` as a value of the annotation ``kind``."""
    try:
        if kind is bool:
            lowered = text.strip().lower()
            if lowered in ("true", "1", "yes"):
                return True
            if lowered in ("false", "0", "no"):
                return False
            raise ValueError
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        if kind is str:
            return text
        if typing.get_origin(kind) is tuple:
            (item, _) = typing.get_args(kind)
            parts = [p for p in text.strip().strip("()[]").split(",") if p.strip()]
            return tuple(item(p.strip()) for p in parts)
    except ValueError:
        pass
    expected = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
                tuple[float, ...]: "comma-separated numbers such as 0.1,0.5"}.get(
        kind, "comma-separated integers such as 256,128"
    )
    raise ConfigError(f"config field {name} expects {expected}, got {text!r}")


def coerce(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """Check JSON-like ``values`` against the fields of ``cls``: lists become tuples, ints floats."""
    types = field_types(cls)
    out = {}
    for name, value in values.items():
        if name not in types:
            raise ConfigError(f"unknown config field {name!r}; valid fields: {', '.join(types)}")
        kind = types[name]
        if isinstance(value, list):
            value = tuple(value)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        origin = typing.get_origin(kind) or kind
        if not isinstance(value, origin) or (origin is int and isinstance(value, bool)):
            raise ConfigError(f"config field {name} expects {getattr(kind, '__name__', kind)}, got {value!r}")
        out[name] = value
    return out


def override(cfg: Any, assignments: Iterable[str]) -> Any:
    """Return ``cfg`` with ``field=value`` strings applied (as given by ``--set``), validated."""
    types = field_types(type(cfg))
    changes = {}
    for assignment in assignments:
        name, sep, text = assignment.partition("=")
        name = name.strip()
        if not sep:
            raise ConfigError(f"--set expects field=value, got {assignment!r}")
        if name not in types:
            raise ConfigError(f"unknown config field {name!r}; valid fields: {', '.join(types)}")
        changes[name] = _convert(name, text.strip(), types[name])
    return dataclasses.replace(cfg, **changes)


def to_dict(cfg: Any) -> dict[str, Any]:
    """The config as a JSON-ready dict (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(cfg).items()}

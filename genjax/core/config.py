"""Config fields written once: their meaning, their checks and their placeholders.

A family's ``Config`` is a frozen, keyword-only dataclass deriving from :class:`ConfigBase`. Each field
is declared with a :class:`Spec`, which carries the field's one-line meaning (shown by ``--fields``),
its checks (run on construction, so a bad value never reaches a trainer) and, for a placeholder such
as ``decay_steps=0`` ("the run's length"), the rule that fills it in. Shared fields live in shared
specs (:mod:`genjax.core.optim`, :mod:`genjax.models.fields`); :meth:`ConfigBase.resolved` is the one
place where placeholders are filled in, against a :class:`Context` (the data and the run's length).
"""
from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Callable, Iterable
from typing import Any

from genjax.core.errors import ConfigError

Check = Callable[[str, Any, Any], None]  # (field name, value, whole config) -> None, or ConfigError
Resolve = Callable[[Any, Any, "Context"], Any]  # (value, whole config, context) -> the value to run with


@dataclasses.dataclass(frozen=True)
class Context:
    """What placeholders are resolved against: the data and the length of the run."""

    data_name: str  # for messages, e.g. "digits"
    data_shape: tuple[int, ...]  # one example, e.g. (8, 8, 1) or (2,)
    labelled: bool  # the data carry labels
    num_classes: int | None  # classes in the labels; None when unknown (a single batch) or unlabelled
    steps: int  # training steps of the run


@dataclasses.dataclass(frozen=True)
class Spec:
    """A config field's meaning, checks and placeholder rule; ``SPEC(default)`` declares the field."""

    help: str
    checks: tuple[Check, ...] = ()
    resolve: Resolve | None = None

    def __call__(self, default: Any, help: str | None = None) -> Any:
        """A dataclass field with this spec and ``default`` (``help`` rewords the meaning for one family)."""
        metadata = {"help": help or self.help, "checks": self.checks, "resolve": self.resolve}
        return dataclasses.field(default=default, metadata=metadata)


# ---------------------------------------------------------------- checks


def positive(name: str, value: Any, config: Any) -> None:
    if not value > 0:
        raise ConfigError(f"{name} must be > 0, got {value!r}")


def nonnegative(name: str, value: Any, config: Any) -> None:
    if not value >= 0:
        raise ConfigError(f"{name} must be >= 0, got {value!r}")


def below_one(name: str, value: Any, config: Any) -> None:
    """A decay or momentum in [0, 1)."""
    if not 0.0 <= value < 1.0:
        raise ConfigError(f"{name} must lie in [0, 1), got {value}")


def choice(options: Iterable[str]) -> Check:
    """A check that the value is one of ``options``."""
    options = tuple(options)

    def check(name: str, value: Any, config: Any) -> None:
        if value not in options:
            raise ConfigError(f"unknown {name} {value!r}; valid choices: {', '.join(options)}")

    return check


def widths(allow_empty: bool = False) -> Check:
    """A check that the value is a tuple of positive ints (non-empty unless ``allow_empty``)."""

    def check(name: str, value: Any, config: Any) -> None:
        ints = isinstance(value, tuple) and all(isinstance(w, int) and w > 0 for w in value)
        if not (ints and (value or allow_empty)):
            kind = "a tuple" if allow_empty else "a non-empty tuple"
            raise ConfigError(f"{name} must be {kind} of positive ints, got {value!r}")

    return check


# ---------------------------------------------------------------- the base class


@dataclasses.dataclass(frozen=True, kw_only=True)
class ConfigBase:
    """Base of every family's frozen ``Config``: checks types and every field's :class:`Spec` on
    construction, then :meth:`check` for rules that tie several fields together."""

    def __post_init__(self) -> None:
        coerce(type(self), dataclasses.asdict(self))
        for f in dataclasses.fields(self):
            for check in f.metadata.get("checks", ()):
                check(f.name, getattr(self, f.name), self)
        self.check()

    def check(self) -> None:
        """Rules between fields; a family's Config overrides this (ConfigError when broken)."""

    def resolved(self, context: Context) -> Any:
        """This config with every placeholder filled in for ``context`` (itself when none is left)."""
        changes = {}
        for f in dataclasses.fields(self):
            rule = f.metadata.get("resolve")
            if rule is not None:
                value = rule(getattr(self, f.name), self, context)
                if value != getattr(self, f.name):
                    changes[f.name] = value
        return dataclasses.replace(self, **changes) if changes else self


_LISTED_LAST: list[type] = []  # shared groups of fields, listed after a family's own


def listed_last(group: type) -> type:
    """Class decorator for a shared group of fields (such as the optimizer's): messages, ``--fields`` and
    ``config.json`` list its fields after the family's own, where the dataclass would put them first."""
    _LISTED_LAST.append(group)
    return group


def field_types(cls: type) -> dict[str, Any]:
    """Map each field of the dataclass ``cls`` to its resolved type annotation, the family's own fields
    first and those of shared groups last."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    shared = {f.name for group in _LISTED_LAST if issubclass(cls, group) for f in dataclasses.fields(group)}
    return {name: hints[name] for name in sorted(names, key=lambda name: name in shared)}


def type_name(kind: Any) -> str:
    """How ``--fields`` names a field's type."""
    if typing.get_origin(kind) is tuple:
        return f"{typing.get_args(kind)[0].__name__}s (comma-separated)"
    return getattr(kind, "__name__", str(kind))


def describe(config: ConfigBase) -> list[dict[str, str]]:
    """Every field of ``config``: name, type, value (its default, or the preset's) and meaning."""
    metadata = {f.name: f.metadata for f in dataclasses.fields(config)}
    rows = []
    for name, kind in field_types(type(config)).items():
        value = getattr(config, name)
        shown = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
        rows.append({"name": name, "type": type_name(kind), "value": shown, "help": metadata[name].get("help", "")})
    return rows


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
    """Check JSON-like ``values`` against the fields of ``cls``: lists become tuples, ints floats; NaN and Inf are
    refused in every float field."""
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
        numbers = value if isinstance(value, tuple) else (value,)
        if any(isinstance(v, float) and not math.isfinite(v) for v in numbers):
            raise ConfigError(f"config field {name} must be a finite number, got {value!r}")
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
    """The config as a JSON-ready dict (tuples become lists), in :func:`field_types`'s order."""
    values = dataclasses.asdict(cfg)
    return {k: list(values[k]) if isinstance(values[k], tuple) else values[k] for k in field_types(type(cfg))}

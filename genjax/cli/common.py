"""What every script shares: one-line errors and exit codes, and choosing a model's config from the
command line (``--model``, ``--preset``, ``--set``, ``--fields``, ``--print-config``).

Exit codes: 0 done; 1 a failure from outside genjax (out of memory, a full disk: one line, the checkpoints
already saved are kept; ``--debug`` or ``GENJAX_DEBUG=1`` shows the traceback); 2 bad usage, config or data
(one line on stderr); 3 training diverged (the line says which checkpoint is kept); 128 + the signal number
(130, 143) when SIGINT or SIGTERM stopped the script (inside the loop after a checkpoint).
"""
from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

import jax

from genjax.core import config as cfg_lib
from genjax.core.errors import (
    EXIT_DIVERGED,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    GenjaxError,
    Interrupted,
    TrainingDiverged,
)
from genjax.models import presets, registry
from genjax.models.family import Family
from genjax.train import cluster
from genjax.train.signals import stop_on_signals

DEBUG_VARIABLE = "GENJAX_DEBUG"  # set (not to 0) for tracebacks instead of one-line errors
# What a collective's error says when a peer process died (gloo on the CPU; the coordination service).
PEER_FAILURE_SIGNS = ("Gloo", "Connection reset by peer", "Connection closed", "heartbeat", "UNAVAILABLE")


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr (no usage dump) and exit code 2, with ``--debug``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.add_argument("--debug", action="store_true",
                          help=f"show the traceback of an error instead of one line (or set {DEBUG_VARIABLE}=1)")

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def outside_error(exc: BaseException) -> str:
    """An error raised outside genjax (memory, disk, XLA), in one line."""
    if isinstance(exc, MemoryError):
        return "out of memory"
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return f"no space left on the device of {exc.filename or 'a file being written'}"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    first = (str(exc).strip().splitlines() or [""])[0][:200]
    if jax.distributed.is_initialized() and any(sign in first for sign in PEER_FAILURE_SIGNS):
        return f"another process of the run stopped or cannot be reached ({first})"
    if "RESOURCE_EXHAUSTED" in first:
        return f"out of device memory ({first})"
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def run_main(main: Callable[[], None], prog: str, debug: bool = False) -> int:
    """Run ``main``; map genjax errors to one stderr line and exit 2, divergence to exit 3, a SIGINT/SIGTERM
    stop to 128 + the signal number, and any other error to one line and exit 1 (re-raised when ``debug``
    or ``$GENJAX_DEBUG`` is set). In a ``jax.distributed`` cluster a process that fails ends at once with its
    code (:func:`genjax.train.cluster.end_process`), and one that JAX's distributed client aborts (a dead peer,
    process 0 gone) ends with one line and exit 1."""
    cluster.name_aborts(prog)
    code, line = _run_main(main, prog, debug)
    if code != EXIT_OK and jax.distributed.is_initialized():
        cluster.end_process(code, line)
    if line is not None:
        print(line, file=sys.stderr)
    return code


def _run_main(main: Callable[[], None], prog: str, debug: bool) -> tuple[int, str | None]:
    """``main``'s exit code and the line to write on stderr (None when it succeeded)."""
    debug = debug or os.environ.get(DEBUG_VARIABLE, "0") not in ("", "0")
    try:
        with stop_on_signals():
            main()
    except GenjaxError as exc:
        return EXIT_USAGE, f"{prog}: error: {exc}"
    except TrainingDiverged as exc:
        return EXIT_DIVERGED, f"{prog}: {exc}"
    except Interrupted as exc:
        return 128 + exc.signum, f"{prog}: {exc}"
    except KeyboardInterrupt as exc:  # Stopped, or a SIGINT before the handlers were installed
        signum = getattr(exc, "signum", signal.SIGINT)
        return 128 + signum, f"{prog}: stopped by {signal.Signals(signum).name}; checkpoints already saved are kept"
    except Exception as exc:
        if debug:
            raise
        return EXIT_FAILED, (f"{prog}: error: {outside_error(exc)}; checkpoints already saved are kept (--debug or "
                             f"{DEBUG_VARIABLE}=1 shows the traceback)")
    return EXIT_OK, None


def entry_point(main: Callable[[list[str] | None], None], prog: str) -> Callable[[], None]:
    """A console script: ``main`` on the command line's arguments, exiting with :func:`run_main`'s code."""
    return lambda: sys.exit(run_main(lambda: main(None), prog, debug="--debug" in sys.argv[1:]))


def add_config_arguments(parser: Parser, models: tuple[str, ...], default: str) -> None:
    """``--model`` (one of ``models``, else ``default``), ``--preset``, ``--set``, ``--fields``, ``--print-config``."""
    parser.add_argument("--model", choices=models, help=f"the family to train (default: {default}, or the preset's)")
    parser.set_defaults(default_model=default)
    parser.add_argument("--preset", help=f"start from a named config: {', '.join(presets.names())}, or "
                                         f"{presets.NONE} for the family's defaults (default: the data's preset, "
                                         "such as dcgan for a GAN on images; --fields shows its values)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                        help="change a config field, e.g. --set latent_dim=2 --set hidden_dims=512,256 (repeatable)")
    parser.add_argument("--fields", action="store_true",
                        help="list the model's config fields with type, value and meaning, then exit")
    parser.add_argument("--print-config", action="store_true",
                        help="print the fully resolved config of this command as JSON, then exit without training")


def add_cluster_arguments(parser: Parser) -> None:
    """``--coordinator``, ``--num-processes``, ``--process-id``: this process's place in a ``jax.distributed``
    cluster (:func:`genjax.train.cluster.join`)."""
    group = parser.add_argument_group("several processes (jax.distributed; default: one process, or the SLURM or "
                                      "Open MPI job JAX detects)")
    group.add_argument("--coordinator", metavar="HOST:PORT", help="process 0's address, the same for every process")
    group.add_argument("--num-processes", type=int, metavar="N", help="how many processes train together")
    group.add_argument("--process-id", type=int, metavar="I", help="this process's index, 0..N-1")


def join_cluster(args: argparse.Namespace) -> None:
    """Join the cluster the arguments of :func:`add_cluster_arguments` (or the environment) describe."""
    cluster.join(args.coordinator, args.num_processes, args.process_id)


def family_and_config(args: argparse.Namespace,
                      data_shape: tuple[int, ...] | None = None) -> tuple[Family, Any, int | None]:
    """The family chosen by ``--model``/``--preset``, its starting config and the preset's default steps (None:
    the family's): the named preset; else, given ``data_shape``, the data's default preset
    (:func:`genjax.models.presets.for_data`, announced on stdout); else (or with ``--preset none``) the family's
    own defaults."""
    if args.preset and args.preset != presets.NONE:
        preset = presets.get(args.preset, args.model)
        return registry.get(preset.model), preset.config, preset.steps
    family = registry.get(args.model or args.default_model)
    preset = presets.for_data(family.NAME, data_shape) if data_shape and not args.preset else None
    if preset is None:
        return family, family.Config(), None
    print(f"{family.NAME} on {'x'.join(map(str, data_shape))} data: starting from preset {preset.name} "
          f"({preset.summary}); --preset none for the family's own defaults", file=sys.stderr)
    return family, preset.config, preset.steps


def fields_table(family: Family, config: Any) -> str:
    """``--fields``: every field of ``config`` with its type, value and meaning."""
    rows = cfg_lib.describe(config)
    width = max(len(r["name"]) for r in rows)
    kind = max(len(r["type"]) for r in rows)
    lines = [f"{family.NAME} config fields (--set FIELD=VALUE):"]
    lines += [f"  {r['name']:{width}}  {r['type']:{kind}}  {r['value']:>12}  {r['help']}" for r in rows]
    return "\n".join(lines)


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2))

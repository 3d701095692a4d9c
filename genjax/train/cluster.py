"""Several processes, one run: joining a ``jax.distributed`` cluster and what its processes agree on.

One process alone is the default and needs none of this. After :func:`join`, every process runs the
same program over one global mesh of every process's devices (:func:`genjax.train.mesh.data_mesh`): the
training split is sharded by rows (each process holds its own rows), the state is replicated, orbax
saves and restores the state from every process, and process 0 alone writes the run's other files and
evaluates. On the CPU the processes' collectives go through gloo (over TCP, so localhost works).
"""
from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, NoReturn

import jax
import numpy as np
from jax._src import distributed  # the coordination service's client: barriers that no gloo timeout cuts short
from jax.experimental import multihost_utils

from genjax.core.errors import EXIT_FAILED, ConfigError

JOIN_TIMEOUT_SECONDS = 120  # how long a process waits for all the others to join
HEARTBEAT_TIMEOUT_SECONDS = 20  # a process silent this long is declared dead and the others abort
BARRIER_TIMEOUT_SECONDS = 6 * 3600  # how long the others wait while process 0 evaluates (a first feature net, say)
# Environments in which jax.distributed.initialize() finds the cluster by itself: variable -> its process count.
CLUSTER_ENVIRONMENTS = {"SLURM_NTASKS": "SLURM", "OMPI_COMM_WORLD_SIZE": "Open MPI"}
_ADDRESS = re.compile(r"^[^\s:]+:\d{1,5}$")


def detected() -> str | None:
    """The name of the cluster environment this process runs in with more than one task (SLURM, Open MPI), or None."""
    for variable, name in CLUSTER_ENVIRONMENTS.items():
        if os.environ.get(variable, "1").isdigit() and int(os.environ.get(variable, "1")) > 1:
            return name
    return None


def join(coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None) -> None:
    """Join the cluster before anything else uses JAX: with ``coordinator`` ("HOST:PORT" of process 0),
    ``num_processes`` and ``process_id`` all given, or from the environment when :func:`detected` names one;
    neither: nothing (one process). ConfigError for partial or impossible arguments."""
    given = [v is not None for v in (coordinator, num_processes, process_id)]
    if any(given) and not all(given):
        raise ConfigError("--coordinator, --num-processes and --process-id go together: give all three, or none "
                          f"(one process, or a {' or '.join(CLUSTER_ENVIRONMENTS.values())} job detected by JAX)")
    if all(given):
        if not isinstance(coordinator, str) or not _ADDRESS.match(coordinator):
            raise ConfigError(f"--coordinator must be HOST:PORT (process 0's address), got {coordinator!r}")
        if not isinstance(num_processes, int) or num_processes < 1:
            raise ConfigError(f"--num-processes must be a positive integer, got {num_processes!r}")
        if not isinstance(process_id, int) or not 0 <= process_id < num_processes:
            raise ConfigError(f"--process-id must be in 0..{num_processes - 1}, got {process_id!r}")
        if num_processes == 1:
            return
    elif detected() is None:
        return
    # Gloo for the CPU backend's cross-process collectives (the default has none); set before the backend starts.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator, num_processes, process_id, initialization_timeout=JOIN_TIMEOUT_SECONDS,
                               heartbeat_timeout_seconds=HEARTBEAT_TIMEOUT_SECONDS)
    end_aborts_with_one_line()


# Ending a failing process of a cluster. JAX's distributed client aborts a process (SIGABRT, exit 134, a core dump
# message) when its coordination service reports a dead peer or is itself gone (process 0 killed); a process may at
# the same moment be ending on its own (a gloo error from the same dead peer). Whichever comes first writes the one
# line and exits; the other waits for that exit.
_ending = threading.Lock()
_abort_handler: Any = None  # the C signal handler (kept referenced while installed)


def name_aborts(prog: str) -> None:
    """Begin the line written when JAX aborts this process with ``prog`` (the script's name)."""
    global _abort_line
    _abort_line = (f"{prog}: error: another process of the run stopped or cannot be reached, or JAX failed "
                   "otherwise: JAX aborted this process (its log lines above say which); checkpoints already saved "
                   "are kept")


name_aborts("genjax")


def end_process(code: int, line: str | None = None) -> NoReturn:
    """Write ``line`` (if any) on stderr and end this process with ``code`` at once (:func:`os._exit`: no shutdown
    barrier that would wait for, or abort on, the other processes). Only the first caller writes and exits."""
    if not _ending.acquire(blocking=False):
        while True:  # another thread is ending the process; let it
            time.sleep(1)
    sys.stdout.flush()
    sys.stderr.flush()
    if line is not None:
        os.write(2, f"{line}\n".encode())
    os._exit(code)


def end_aborts_with_one_line() -> None:
    """Catch SIGABRT at the C level, where JAX's fatal log ends in abort(): one genjax line, exit
    ``EXIT_FAILED`` (1), instead of a core dump's 134 (JAX's own log lines above it stay)."""
    global _abort_handler
    handler_type = ctypes.CFUNCTYPE(None, ctypes.c_int)
    _abort_handler = handler_type(lambda signum: end_process(EXIT_FAILED, _abort_line))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.signal.restype = ctypes.c_void_p
    libc.signal.argtypes = (ctypes.c_int, handler_type)
    libc.signal(signal.SIGABRT, _abort_handler)


_alone = False  # inside alone(): this process works by itself
_barriers = itertools.count()


def processes() -> int:
    """The number of processes in this run (1 without a cluster, and inside :func:`alone`)."""
    return 1 if _alone else jax.process_count()


def is_primary() -> bool:
    """Whether this process writes the run's files (process 0)."""
    return _alone or jax.process_index() == 0


@contextlib.contextmanager
def alone() -> Iterator[None]:
    """A block that this process runs by itself, on its own devices (process 0's evaluation, which may train the
    feature classifier with ``fit``): inside it, :func:`processes` is 1."""
    global _alone
    previous, _alone = _alone, True
    try:
        yield
    finally:
        _alone = previous


def barrier(name: str) -> None:
    """Wait until every process reaches the barrier ``name`` (nothing with one process): through the coordination
    service, so a long wait (the others while process 0 evaluates) has no collective to time out."""
    if processes() > 1:
        distributed.global_state.client.wait_at_barrier(f"genjax-{next(_barriers)}-{name}",
                                                        BARRIER_TIMEOUT_SECONDS * 1000)


def largest(value: int) -> int:
    """The largest of every process's ``value`` (a stop signal seen by any process, say); ``value`` alone with one."""
    if processes() == 1:
        return value
    return int(np.max(multihost_utils.process_allgather(np.int32(value))))


def local_copy(tree: Any) -> Any:
    """``tree`` (replicated over the cluster) as arrays on this process's first device, for work that one process
    does alone (evaluation, figures); ``tree`` itself with one process."""
    if processes() == 1:
        return tree
    return jax.device_put(jax.device_get(tree), jax.local_devices()[0])

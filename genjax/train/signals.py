"""SIGINT and SIGTERM: a clean stop inside the loop, one line outside it.

Inside the loop (:class:`StopRequests`) a signal lets the current call finish and the state be checkpointed;
a second signal stops at once, except during a checkpoint save, which it lets finish first. Outside the loop
(:func:`stop_on_signals`, which the scripts hold around everything) SIGTERM, like SIGINT, raises
:class:`genjax.core.errors.Stopped`, so the script ends with one line and 128 + the signal number.
"""
from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

from genjax.core.errors import Stopped

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _raise_stopped(signum, frame):
    raise Stopped(signum)


def _install(handler) -> dict:
    """Install ``handler`` for SIGNALS (main thread only) and return the handlers it replaced."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {s: signal.signal(s, handler) for s in SIGNALS}


def _restore(previous: dict) -> None:
    for s, handler in previous.items():
        signal.signal(s, handler)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """While active, SIGINT and SIGTERM raise :class:`Stopped` (SIGTERM would otherwise kill without a word)."""
    previous = _install(_raise_stopped)
    try:
        yield
    finally:
        _restore(previous)


class StopRequests:
    """While active (in the main thread), SIGINT and SIGTERM set ``signum`` instead of stopping the process,
    so the loop can finish its call and checkpoint; a second signal raises :class:`Stopped` at once, or, during
    :meth:`critical`, as soon as the block ends."""

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict = {}
        self._in_critical = False
        self._deferred: int | None = None

    def _handle(self, signum, frame):
        if self.signum is None:
            self.signum = signum
        elif self._in_critical:
            self._deferred = signum
        else:  # asked twice: give up on the clean stop
            self.__exit__()
            raise Stopped(signum)

    @contextlib.contextmanager
    def critical(self) -> Iterator[None]:
        """A block (a checkpoint save) that a second signal does not cut short."""
        self._in_critical = True
        try:
            yield
        finally:
            self._in_critical = False
        if self._deferred is not None:
            self.__exit__()
            raise Stopped(self._deferred)

    def __enter__(self) -> StopRequests:
        self._previous = _install(self._handle)
        return self

    def __exit__(self, *exc) -> None:
        _restore(self._previous)
        self._previous = {}

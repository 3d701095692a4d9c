"""A clean stop on SIGINT or SIGTERM: the loop finishes its call and checkpoints before it exits."""
from __future__ import annotations

import signal
import threading


class StopRequests:
    """While active (in the main thread), SIGINT and SIGTERM set ``signum`` instead of killing the
    process, so the loop can finish its call and checkpoint; a second signal stops at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict = {}

    def _handle(self, signum, frame):
        if self.signum is not None:  # asked twice: give up on the clean stop
            self.__exit__()
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self) -> StopRequests:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}

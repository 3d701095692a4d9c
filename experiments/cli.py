"""Shared command-line plumbing: one-line errors with exit code 2, and the exit codes of DESIGN.md."""
from __future__ import annotations

import argparse
import sys
from typing import Callable

from genjax.errors import GenjaxError, Interrupted, TrainingDiverged

EXIT_OK, EXIT_USAGE, EXIT_DIVERGED = 0, 2, 3


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr (no usage dump) and exit code 2."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def run_main(main: Callable[[], None], prog: str) -> int:
    """Run ``main``; map genjax errors to one stderr line and exit 2, divergence to exit 3, and a
    SIGINT/SIGTERM stop (after a checkpoint) to 128 + the signal number."""
    try:
        main()
    except GenjaxError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except TrainingDiverged as exc:
        print(f"{prog}: {exc}; the last good checkpoint is kept", file=sys.stderr)
        return EXIT_DIVERGED
    except Interrupted as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 128 + exc.signum
    return EXIT_OK

"""The loop's progress bar: refreshed as tqdm does in a terminal or a notebook, and sparingly into a log file."""
from __future__ import annotations

import sys

from tqdm.auto import tqdm
from tqdm.notebook import tqdm as notebook_tqdm

# Seconds between progress refreshes written to a log file (a batch job's stderr): a refresh per call
# (100 steps by default) would put 800 carriage-return lines into the log of an 80,000-step run.
LOG_REFRESH_SECONDS = 30.0


def progress_bar(total: int, initial: int, desc: str, disable: bool) -> tqdm:
    """A bar of steps, refreshed at most every :data:`LOG_REFRESH_SECONDS` when stderr is not a terminal
    (a log file), besides the final refresh."""
    to_log = not sys.stderr.isatty() and not issubclass(tqdm, notebook_tqdm)
    return tqdm(total=total, initial=initial, desc=desc, unit="step", disable=disable, dynamic_ncols=True,
                mininterval=LOG_REFRESH_SECONDS if to_log else 0.1)

"""Where the loop's records go: ``metrics.jsonl`` in the run directory, and TensorBoard events beside it
when tensorboardX (the optional ``tensorboard`` extra) is installed. Each writer takes whole records
(a dict with ``step`` and numbers) and is closed at the end of the loop."""
from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Protocol

METRICS_FILE = "metrics.jsonl"
EVENTS = "tensorboard"  # folder of the TensorBoard event files


class MetricWriter(Protocol):
    def write(self, record: dict) -> None: ...

    def close(self) -> None: ...


class JsonlWriter:
    """Appends one JSON line per record to ``workdir/metrics.jsonl``."""

    def __init__(self, workdir: Path):
        self.path = Path(workdir) / METRICS_FILE

    def write(self, record: dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")

    def close(self) -> None:
        pass


class TensorBoardWriter:
    """Every number of a record as a TensorBoard scalar at its step (``eval_*`` under ``eval/``, the
    rest under ``train/``)."""

    def __init__(self, workdir: Path):
        from tensorboardX import SummaryWriter

        self.writer = SummaryWriter(str(Path(workdir) / EVENTS), flush_secs=10)

    def write(self, record: dict) -> None:
        for key, value in record.items():
            if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool):
                tag = f"eval/{key.removeprefix('eval_')}" if key.startswith("eval_") else f"train/{key}"
                self.writer.add_scalar(tag, value, record["step"])

    def close(self) -> None:
        self.writer.close()


class MultiWriter:
    """Writes every record to each of its writers."""

    def __init__(self, writers: list[MetricWriter]):
        self.writers = writers

    def write(self, record: dict) -> None:
        for writer in self.writers:
            writer.write(record)

    def close(self) -> None:
        for writer in self.writers:
            writer.close()


def run_writers(workdir: Path) -> MultiWriter:
    """The writers of a run directory: JSON lines always, TensorBoard when tensorboardX is installed."""
    writers: list[MetricWriter] = [JsonlWriter(workdir)]
    with contextlib.suppress(ImportError):
        writers.append(TensorBoardWriter(workdir))
    return MultiWriter(writers)

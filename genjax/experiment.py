"""Layer 5: what an experiment does with the layers below, written once for research code and scripts.

:func:`fit` is the training loop with the family's light evaluation every ``eval_every`` steps (the
``genjax.fit`` of the public API); :func:`train_and_evaluate` trains a run directory to its end, then
writes the loss curve and the family's figures, then its full evaluation (``eval.json``).
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from genjax.core.data import Dataset
from genjax.core.errors import EvaluationError, GenjaxError
from genjax.eval import evaluate as evaluation
from genjax.eval import plots
from genjax.eval.figures import write_figures
from genjax.models import registry
from genjax.models.family import Family
from genjax.train import cluster, loop, rundir


def fit(family: Family | str, config: Any, dataset: Dataset, **options: Any) -> loop.FitResult:
    """:func:`genjax.train.loop.fit` (same arguments) that logs ``genjax.eval.evaluate.light`` every
    ``eval_every`` steps unless ``evaluate`` is given."""
    family = registry.lookup(family)
    options.setdefault("evaluate", evaluation.light(family, dataset))
    return loop.fit(family, config, dataset, **options)


def parameter_count(params: Any) -> int:
    """Scalars in a parameter tree."""
    return int(sum(np.size(leaf) for leaf in jax.tree.leaves(params)))


@dataclasses.dataclass
class Outcome:
    """A finished run: the loop's result, the contents of ``eval.json`` and the figures written."""

    result: loop.FitResult
    report: dict[str, Any]
    figures: list[Path]


def train_and_evaluate(family: Family | str, config: Any, dataset: Dataset, *, workdir: str | Path,
                       title: str | None = None, **options: Any) -> Outcome:
    """:func:`fit` into ``workdir``, then ``loss_curve.png`` (titled ``title``, default the family's name) and the
    family's figures, then the full evaluation of the final state: ``eval.json`` (the measures of
    :func:`genjax.eval.evaluate.evaluate` plus steps, training seconds and steps/s, ``eval_seconds`` and
    parameters). A failing evaluation raises :class:`genjax.errors.EvaluationError` (one line) and leaves the
    checkpoint and figures in place: ``--resume`` on the finished run evaluates it again without training. In a
    cluster every process trains and process 0 alone writes the figures and evaluates (the others return an empty
    report and no figures)."""
    family = registry.lookup(family)
    workdir = Path(workdir)
    if not cluster.is_primary():  # the other processes of a cluster train; process 0 writes and evaluates
        return Outcome(fit(family, config, dataset, workdir=workdir, **options), {}, [])
    with rundir.claimed(workdir, options.get("resume", False)):  # one writer from training to eval.json
        result = fit(family, config, dataset, workdir=workdir, **options)
        stats = {"steps": int(result.state.step), "train_seconds": round(result.train_seconds, 3),
                 "compile_seconds": round(result.compile_seconds, 3),
                 "steps_per_second": round(result.steps_per_second, 1)}
        report, figures = finish_run(family, cluster.local_copy(result.state), result.history, dataset, workdir,
                                     title or family.NAME, stats)
        return Outcome(result, report, figures)


def finish_run(family: Family, state: Any, history: list[dict], dataset: Dataset, workdir: Path, title: str,
               stats: dict) -> tuple[dict, list[Path]]:
    """What a trained run directory gets after training: ``loss_curve.png`` from ``history``, the family's figures,
    then ``eval.json`` (the full evaluation of ``state``, ``stats``, ``eval_seconds`` and parameters). Runs in this
    process alone (a cluster's process 0). EvaluationError (one line) when the evaluation fails; the figures and
    checkpoints stay."""
    with cluster.alone():
        figures = [plots.loss_curves(history, workdir / "loss_curve.png", title)]
        figures += write_figures(family, state, dataset, workdir)
        started = time.perf_counter()
        try:
            report = evaluation.evaluate(family, state, dataset, full=True)
        except (GenjaxError, MemoryError, ArithmeticError, ValueError, jax.errors.JaxRuntimeError) as exc:
            cause = str(exc) if isinstance(exc, GenjaxError) else f"{type(exc).__name__}: {exc}".replace("\n", " ")
            raise EvaluationError(f"evaluation failed after training ({cause}); {workdir} keeps the checkpoint and "
                                  "figures") from exc
    report.update(**stats, eval_seconds=round(time.perf_counter() - started, 1),
                  parameters=parameter_count(state.params))
    (workdir / rundir.EVAL_FILE).write_text(json.dumps(report, indent=2) + "\n")
    return report, figures

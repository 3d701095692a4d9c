"""Sweep hyperparameters in one program: a grid of settings times several seeds, then a results table.

    genjax-sweep --model gan --dataset digits --sweep g_learning_rate=1e-4,3e-4,1e-3 --sweep r1_weight=0.1,1,10 \
        --seeds 3 --workdir runs/gan-sweep

Trains every run in one vmapped program (:func:`genjax.train.sweep.fit_sweep`), then finishes each run
directory as ``genjax-train`` does (``loss_curve.png``, the family's figures, ``eval.json``), then writes
``sweep.json``, ``sweep.md`` (the mean and standard error over seeds of each setting's measures, the best
setting marked) and ``sweep_<field>.png`` (the chosen measure against each swept value). Exit codes as
``genjax-train``'s.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import jax
import numpy as np

from genjax import experiment
from genjax.cli import common
from genjax.core import config as cfg_lib
from genjax.core import data
from genjax.core.errors import ConfigError
from genjax.eval import plots
from genjax.models import registry
from genjax.train import mesh, rundir
from genjax.train import sweep as sweep_lib
from genjax.train.steps import LOOP_STRATEGIES

PROG = "genjax-sweep"
LOWER_IS_BETTER = ("test_mse", "frechet", "kid", "class_kl", "data_frechet", "test_nll", "nll_bits_per_dim")
DEFAULT_MEASURES = ("frechet", "test_mse")  # the first that a family's evaluation reports


def parser() -> common.Parser:
    p = common.Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    common.add_config_arguments(p, registry.names(), "gan")
    p.add_argument("--sweep", action="append", default=[], metavar="FIELD=V1,V2,...",
                   help="a field and its values (repeatable: the grid of every combination); --fields marks the "
                        "sweepable ones")
    p.add_argument("--dataset", default="digits", help=f"{', '.join(data.NAMES)}, or a path")
    p.add_argument("--workdir", type=Path, required=True, help="the sweep's directory (one run directory per run)")
    p.add_argument("--steps", type=int, help="training steps of every run (default: the preset's or the family's)")
    p.add_argument("--seeds", type=int, default=1, help="seeds per setting: --seed .. --seed + N - 1")
    p.add_argument("--seed", type=int, default=0, help="the first seed")
    p.add_argument("--measure", help="the eval.json measure that ranks the settings (default: frechet, else "
                                     "test_mse)")
    p.add_argument("--resume", action="store_true", help="continue the sweep in --workdir")
    p.add_argument("--overwrite", action="store_true", help="replace the sweep in --workdir")
    p.add_argument("--steps-per-call", type=int, default=100)
    p.add_argument("--checkpoint-every", type=int, default=1000, help="checkpoint interval in steps (0: only at end)")
    p.add_argument("--devices", type=int, help="split the runs over this many devices (default: on a CPU, one XLA "
                                               "device per core, as far as they divide the runs; else all that do)")
    p.add_argument("--runs-per-group", type=int, help="runs of a device vmapped together, the groups one after "
                                                     "another (default: 1 on a CPU, all on an accelerator)")
    p.add_argument("--loop-strategy", choices=("auto", *LOOP_STRATEGIES), default="auto",
                   help="how a call runs its steps (as for genjax-train; default auto: scan)")
    p.add_argument("--no-progress", action="store_true")
    return p


def parse_sweep(family, texts: list[str]) -> dict[str, list[float]]:
    """``--sweep FIELD=V1,V2`` arguments as {field: values} (ConfigError for a bad one, one line)."""
    sweep: dict[str, list[float]] = {}
    for text in texts:
        field, sep, values = text.partition("=")
        if not sep:
            raise ConfigError(f"--sweep expects FIELD=V1,V2,..., got {text!r}")
        if field.strip() in sweep:
            raise ConfigError(f"--sweep {field.strip()} is given twice; list its values once")
        sweep[field.strip()] = sweep_lib.parse_values(family, field.strip(), values)
    if not sweep:
        raise ConfigError(f"{PROG} needs at least one --sweep FIELD=V1,V2,...; sweepable for {family.NAME}: "
                          f"{', '.join(sweep_lib.sweepable(family)) or 'none'}")
    return sweep


def summarise(runs: list[sweep_lib.Run], reports: list[dict], measure: str) -> list[dict]:
    """One row per setting: its values, then the mean and standard error over seeds of every numeric measure."""
    rows: dict[tuple, dict] = {}
    for run, report in zip(runs, reports, strict=True):
        row = rows.setdefault(tuple(run.setting.items()), {"setting": run.setting, "seeds": [], "values": {}})
        row["seeds"].append(run.seed)
        for key, value in report.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value is not None:
                row["values"].setdefault(key, []).append(float(value))
    table = []
    for row in rows.values():
        stats = {}
        for key, values in row["values"].items():
            v = np.asarray(values)
            stats[key] = {"mean": float(v.mean()), "se": float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else None}
        table.append({"setting": row["setting"], "seeds": row["seeds"], "measures": stats})
    if not any(measure in row["measures"] for row in table):
        raise ConfigError(f"--measure {measure!r} is not in the runs' eval.json; measures: "
                          f"{', '.join(sorted(table[0]['measures']))}")
    sign = 1 if measure in LOWER_IS_BETTER else -1
    best = min(range(len(table)), key=lambda i: sign * table[i]["measures"].get(measure, {"mean": np.inf})["mean"])
    for i, row in enumerate(table):
        row["best"] = i == best
    return table


def write_markdown(path: Path, family_name: str, dataset: str, steps: int, sweep: dict, table: list[dict],
                   measure: str, seconds: dict, group: int) -> Path:
    """``sweep.md``: what ran, then the table (mean ± standard error over seeds), the best setting in bold."""
    fields = list(sweep)
    shown = [measure, *[k for k in ("test_mse", "frechet", "kid", "precision", "recall", "coverage")
                        if k != measure and k in table[0]["measures"]]]
    lines = [f"# {family_name} sweep on {dataset}", "",
             f"{len(table)} settings x {len(table[0]['seeds'])} seeds, {steps} steps each, trained in one program "
             f"({group} run{'s' if group > 1 else ''} at a time per device; {seconds['train']:.1f} s training, "
             f"{seconds['compile']:.1f} s compiling, {seconds['eval']:.1f} s evaluating). Ranked by {measure} "
             f"({'lower' if measure in LOWER_IS_BETTER else 'higher'} is better); "
             "cells are mean ± standard error over seeds.", "",
             "| " + " | ".join([*fields, *shown]) + " |", "|" + "---|" * (len(fields) + len(shown))]
    for row in table:
        cells = [f"{row['setting'][f]:g}" for f in fields]
        for key in shown:
            stat = row["measures"].get(key)
            if stat is None:
                cells.append("")
            else:
                cells.append(f"{stat['mean']:.4g}" + ("" if stat["se"] is None else f" ± {stat['se']:.2g}"))
        if row["best"]:
            cells = [f"**{c}**" for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", *[f"![{measure} against {f}](sweep_{f}.png)" for f in fields], ""]
    path.write_text("\n".join(lines))
    return path


def default_devices(runs: int) -> int:
    """Without ``--devices``: the runs split over :func:`genjax.train.mesh.devices_for_runs` devices, announced."""
    devices = mesh.devices_for_runs(runs)
    if devices > 1:
        print(f"{runs} runs split over {devices} {jax.default_backend()} devices ({runs // devices} each; --devices "
              "to choose)", file=sys.stderr)
    return devices


def saved_strategy(workdir: Path, runs: list[sweep_lib.Run]) -> str:
    """The loop strategy a sweep's runs trained with, as the first run's ``config.json`` recorded it ("auto" when
    no run has one yet): a resumed sweep continues with it unless told otherwise."""
    for run in runs:
        if (workdir / run.name / rundir.CONFIG_FILE).is_file():
            return rundir.read_description(workdir / run.name)["loop_strategy"]
    return "auto"


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.resume and args.overwrite:
        raise ConfigError("--resume and --overwrite exclude each other; pass one")
    if args.seeds <= 0:
        raise ConfigError(f"--seeds must be a positive integer, got {args.seeds}")
    dataset = data.load(args.dataset)
    family, config, preset_steps = common.family_and_config(args, dataset.data_shape)
    if args.fields:
        print(common.fields_table(family, config))
        print(f"sweepable in one program: {', '.join(sweep_lib.sweepable(family)) or 'none'}")
        return
    sweep = parse_sweep(family, args.sweep)
    seeds = list(range(args.seed, args.seed + args.seeds))
    if args.devices is None:  # before anything starts JAX's backends
        mesh.force_cpu_devices(mesh.cpu_devices_wanted(len(sweep_lib.grid(sweep)) * len(seeds)))
    steps = (preset_steps or family.DEFAULT_STEPS) if args.steps is None else args.steps
    config = cfg_lib.override(config, args.overrides)
    _, runs = sweep_lib.plan(family, config, dataset, steps, sweep, seeds)  # a bad value refused before anything
    if args.print_config:
        common.print_json({run.name: cfg_lib.to_dict(run.config) for run in runs})
        return
    if args.resume and args.loop_strategy == "auto":
        args.loop_strategy = saved_strategy(args.workdir, runs)
    devices = default_devices(len(runs)) if args.devices is None else args.devices
    result = sweep_lib.fit_sweep(family, config, dataset, steps=steps, sweep=sweep, seeds=seeds,
                                 steps_per_call=args.steps_per_call, devices=devices, workdir=args.workdir,
                                 checkpoint_every=args.checkpoint_every, resume=args.resume,
                                 overwrite=args.overwrite, progress=not args.no_progress,
                                 group=args.runs_per_group, loop_strategy=args.loop_strategy)
    reports, eval_seconds = [], 0.0
    for i, run in enumerate(result.runs):
        directory = args.workdir / run.name
        report, _ = experiment.finish_run(
            family, result.state(i), rundir.read_metrics(directory), dataset, directory, title=run.name,
            stats={"steps": steps, "train_seconds": round(result.train_seconds, 3),
                   "compile_seconds": round(result.compile_seconds, 3),
                   "steps_per_second": round(result.steps_per_second, 1), "runs_in_program": len(result.runs),
                   "runs_per_group": result.runs_per_group})
        eval_seconds += report["eval_seconds"]
        reports.append(report)
    measure = args.measure or next((m for m in DEFAULT_MEASURES if m in reports[0]), DEFAULT_MEASURES[-1])
    table = summarise(result.runs, reports, measure)
    seconds = {"train": result.train_seconds, "compile": result.compile_seconds, "eval": eval_seconds}
    figures = [plots.sweep_curves(table, field, measure, args.workdir / f"sweep_{field}.png") for field in sweep]
    (args.workdir / "sweep.json").write_text(json.dumps(
        {"model": family.NAME, "dataset": dataset.name, "steps": steps, "sweep": sweep, "seeds": seeds,
         "measure": measure, "seconds": seconds, "devices": devices, "runs_per_group": result.runs_per_group,
         "runs": [run.name for run in result.runs], "table": table},
        indent=2) + "\n")
    markdown = write_markdown(args.workdir / "sweep.md", family.NAME, dataset.name, steps, sweep, table, measure,
                              seconds, result.runs_per_group)
    print(markdown.read_text().split("\n![")[0])
    print(f"wrote {args.workdir}/: sweep.md, sweep.json, {', '.join(p.name for p in figures)} and "
          f"{len(result.runs)} run directories")


entry = common.entry_point(main, PROG)

if __name__ == "__main__":
    entry()

"""Several families on one labelled image set with equal step budgets, and a report that compares them.

    genjax-compare --workdir runs/compare

Trains every model of ``--models`` (family names, or preset names such as ``wgan_gp``) for ``--steps``
steps, each in its own run directory as ``genjax-train`` writes it, evaluates each on the held-out
split with the same measures, and writes ``report.md`` (a table, figures and a "which to choose"
section computed from this run's numbers), ``report.json`` (the same numbers) and the figures beside
them. A rerun reuses every model that finished (its ``eval.json``), continues one that stopped from
its newest checkpoint, and refuses a run directory trained with other settings; ``--overwrite``
retrains them all. Exit codes as ``genjax-train``.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
from tqdm.auto import tqdm

from genjax import experiment
from genjax.cli import common
from genjax.core import config as cfg_lib
from genjax.core import data
from genjax.core.errors import ConfigError, RunError
from genjax.eval import plots, report
from genjax.models import presets, registry
from genjax.models.family import Family
from genjax.nn import nets
from genjax.train import cluster, rundir
from genjax.train.steps import run_config

PROG = "genjax-compare"
MODELS = ("autoencoder", "vae", "gan", "wgan_gp", "dgn")  # the default comparison
STEPS = 4000  # the default budget per model
# On images that get conv networks: wgan_gp (an MLP critic, 5 updates per step) is left out and the budget is
# smaller, so that the default comparison of Fashion-MNIST finishes within an hour on 2 CPU cores.
IMAGE_MODELS = ("autoencoder", "vae", "gan", "dgn")
IMAGE_STEPS = 3000
PCA_CODE_SIZE = 8  # the PCA baseline's size when no model encodes (else the first encoder's code size)


def parser() -> common.Parser:
    choices = (*registry.names(), *presets.names())
    p = common.Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", type=Path, required=True)
    p.add_argument("--dataset", default="digits", help="a labelled image data set (digits, or a path)")
    p.add_argument("--steps", type=int, help=f"train_step calls per model (default {STEPS}; {IMAGE_STEPS} on images "
                                              "that get conv networks, such as fashion_mnist)")
    p.add_argument("--models", nargs="+", choices=choices, metavar="MODEL",
                   help=f"families or presets to compare, from: {', '.join(choices)} (default: {' '.join(MODELS)}; "
                        f"on conv-sized images {' '.join(IMAGE_MODELS)})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true",
                   help="retrain every model (default: reuse finished models and continue stopped ones)")
    p.add_argument("--fields", action="store_true", help="list each model's config fields, then exit")
    p.add_argument("--print-config", action="store_true",
                   help="print each model's fully resolved config as JSON, then exit without training")
    p.add_argument("--no-progress", action="store_true")
    common.add_cluster_arguments(p)
    return p


def entry_of(name: str, data_shape: tuple[int, ...]) -> tuple[str, Family, Any]:
    """A ``--models`` entry: its label in the report, its family and its config (a family name starts from the
    data's default preset, :func:`genjax.models.presets.for_data`, when it has one)."""
    if name in presets.PRESETS:
        preset = presets.PRESETS[name]
        return f"{preset.model} ({name})", registry.get(preset.model), preset.config
    family = registry.get(name)
    preset = presets.for_data(name, data_shape)
    return (name, family, family.Config()) if preset is None else (f"{name} ({preset.name})", family, preset.config)


STEPS_PER_CALL = 250
CHECKPOINT_EVERY = 1000  # a stopped comparison continues from here


def plan(args, label: str, family: Family, config: Any, dataset: data.Dataset) -> str:
    """What to do with one model's run directory: ``reuse`` (finished with these settings and ``--steps``),
    ``resume`` (these settings, stopped or shorter) or ``train`` (empty, or ``--overwrite``). A directory
    trained with other settings is refused with one line, before any model trains."""
    workdir = args.workdir / slug(label)
    if args.overwrite or not rundir.holds_run(workdir):
        return "train"
    description = rundir.describe(family, run_config(family, config, dataset, args.steps), dataset.name,
                                  dataset.data_shape, args.seed)
    differing = rundir.differences(rundir.read_description(workdir), description)
    if differing:
        raise RunError(f"{workdir} holds a run of {label} with other settings ({', '.join(differing)}); pass "
                       "--overwrite to retrain every model")
    finished = workdir / rundir.EVAL_FILE
    if finished.exists() and json.loads(finished.read_text()).get("steps") == args.steps:
        return "reuse"
    return "resume"


def trained(args, label: str, family: Family, config: Any, dataset: data.Dataset,
            how: str) -> tuple[dict, list[Path], Any]:
    """One model of the comparison, as :func:`plan` decided: its report row, figures and final state."""
    workdir = args.workdir / slug(label)
    if how == "reuse":
        row = json.loads((workdir / rundir.EVAL_FILE).read_text())
        row["wall_seconds"] = sum(row.get(k, 0.0) for k in ("compile_seconds", "train_seconds", "eval_seconds"))
        _, config, state = rundir.load_run(workdir)
        tqdm.write(f"{label}: reusing the finished run in {workdir}")
        return {**row, "config": cfg_lib.to_dict(config)}, sorted(workdir.glob("*.png")), state
    outcome = experiment.train_and_evaluate(
        family, config, dataset, workdir=workdir, title=label, steps=args.steps, seed=args.seed,
        resume=how == "resume", overwrite=how == "train", steps_per_call=STEPS_PER_CALL, eval_every=0,
        checkpoint_every=CHECKPOINT_EVERY if args.steps % CHECKPOINT_EVERY == 0 else 0, progress=not args.no_progress)
    return ({**outcome.report, "config": cfg_lib.to_dict(outcome.result.state.config)}, outcome.figures,
            outcome.result.state)


def slug(label: str) -> str:
    return label.replace(" (", "-").replace(")", "").replace(" ", "-")


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    common.join_cluster(args)
    if args.steps is not None and args.steps <= 0:
        raise ConfigError("--steps must be a positive integer")
    dataset = data.load(args.dataset)
    if dataset.y_train is None or not dataset.is_image:
        raise ConfigError(f"{PROG} needs a labelled image data set; {dataset.name} is not one")
    images = nets.default_architecture(dataset.data_shape, 2) == "conv"
    args.models = args.models or list(IMAGE_MODELS if images else MODELS)
    args.steps = args.steps or (IMAGE_STEPS if images else STEPS)
    entries = [entry_of(name, dataset.data_shape) for name in args.models]
    if args.fields:
        print("\n\n".join(common.fields_table(family, config) for _, family, config in entries))
        return
    if args.print_config:
        common.print_json({label: rundir.describe(family, run_config(family, config, dataset, args.steps),
                                                  dataset.name, dataset.data_shape, args.seed)
                           for label, family, config in entries})
        return
    try:
        args.workdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(f"cannot write to {args.workdir}: {exc.strerror}") from None
    plans = [plan(args, label, family, config, dataset) for label, family, config in entries]
    if not cluster.is_primary():  # the other processes of a cluster train with process 0, which reports
        for (label, family, config), how in zip(entries, plans, strict=True):
            if how != "reuse":
                trained(args, label, family, config, dataset, how)
        return
    rows, figures, codes = {}, {}, {}
    bar = tqdm(entries, desc="compare", unit="model", disable=args.no_progress, dynamic_ncols=True)
    for (label, family, config), how in zip(bar, plans, strict=True):
        bar.set_postfix_str(label)
        start = time.perf_counter()
        rows[label], model_figures, state = trained(args, label, family, config, dataset, how)
        state = cluster.local_copy(state)
        rows[label].setdefault("wall_seconds", time.perf_counter() - start)
        figures[label] = {p.stem: str(p.relative_to(args.workdir)) for p in model_figures}
        if family.CAPABILITIES.encodes:
            with cluster.alone():
                codes[label] = (np.asarray(family.codes(state, dataset.x_test)), dataset.y_test)
        tqdm.write(f"{label}: {rows[label]['wall_seconds']:.0f} s, " + ", ".join(
            f"{h} {report.cell(rows[label], k, f)}" for k, h, f in report.COLUMNS
            if rows[label].get(k) is not None and k != "parameters"))
    with cluster.alone():
        write_report(args, dataset, rows, figures, codes)


def write_report(args, dataset: data.Dataset, rows: dict, figures: dict, codes: dict) -> None:
    """The PCA baselines, ``codes.png``, ``report.md`` and ``report.json`` from the models' rows, figures and codes."""
    code_size = next((c.shape[-1] for c, _ in codes.values()), PCA_CODE_SIZE)
    rows["PCA"], rows["PCA + Gaussian"], pca_samples, pca_codes = report.pca_rows(dataset, code_size)
    codes["PCA"] = (pca_codes, dataset.y_test)
    figures["PCA + Gaussian"] = {"samples": str(plots.image_grid(pca_samples[:64], args.workdir / "pca_samples.png")
                                                .relative_to(args.workdir))}
    figures["codes"] = {"codes": str(plots.code_views(codes, args.workdir / "codes.png").relative_to(args.workdir))}
    floor = report.floor_row(rows, dataset.num_classes)
    choose = report.conclusions(rows, floor, dataset.num_classes)
    markdown = report.write_markdown(args.workdir / "report.md", dataset, args.steps, args.seed, rows, floor, figures,
                                     choose)
    clean = {name: {k: v for k, v in row.items() if not k.endswith("_floor")} for name, row in rows.items()}
    (args.workdir / "report.json").write_text(json.dumps(
        {"dataset": dataset.name, "steps": args.steps, "seed": args.seed, "jax": jax.__version__,
         "device": str(jax.devices()[0]), "models": clean, "real_data_floor": floor, "figures": figures,
         "which_to_choose": choose}, indent=2, default=str) + "\n")
    print(markdown.read_text().split("## Figures")[0])
    print(f"wrote {args.workdir}/: report.md, report.json, codes.png, pca_samples.png and one run directory per model")


entry = common.entry_point(main, PROG)

if __name__ == "__main__":
    entry()

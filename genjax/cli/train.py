"""Train one family on one data set and write a complete run directory.

    genjax-train --model autoencoder --dataset digits --workdir runs/ae

Writes ``config.json``, ``metrics.jsonl``, ``eval.json``, ``loss_curve.png``, the family's figures
(``reconstructions.png`` for autoencoders) and ``checkpoints/``. Exit codes: 0 done; 2 bad usage,
config or data (one line on stderr); 3 training diverged (the last good checkpoint is kept).

Several processes train one run together through ``jax.distributed``: start one process per host (or per
GPU) with the same arguments plus ``--coordinator HOST:PORT --num-processes N --process-id I``, or none of
these in a SLURM or Open MPI job (JAX reads the job's environment).
"""
from __future__ import annotations

from pathlib import Path

import jax

from genjax import experiment
from genjax.cli import common
from genjax.core import config as cfg_lib
from genjax.core import data
from genjax.core.errors import ConfigError
from genjax.eval.evaluate import notes
from genjax.models import registry
from genjax.train import cluster, rundir
from genjax.train.steps import LOOP_STRATEGIES, resolve_strategy, run_config

PROG = "genjax-train"
RUN_STATS = ("steps", "train_seconds", "compile_seconds", "steps_per_second")


def parser() -> common.Parser:
    p = common.Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    common.add_config_arguments(p, registry.names(), "autoencoder")
    p.add_argument("--dataset", default="digits", help=f"{', '.join(data.NAMES)}, or a path to .npz/.npy/images/IDX")
    p.add_argument("--workdir", type=Path, help="run directory (default runs/<model>-<dataset>)")
    p.add_argument("--steps", type=int, help="total training steps (default: the preset's, else the family's "
                                                 "DEFAULT_STEPS)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue the run in --workdir from its newest checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace the run already in --workdir")
    p.add_argument("--steps-per-call", type=int, default=100, help="steps fused per compiled call = log interval")
    p.add_argument("--eval-every", type=int,
                   help="light held-out evaluation interval in steps (0: off; default: a tenth of the run, in whole "
                        "calls); the full evaluation runs once, at the end")
    p.add_argument("--checkpoint-every", type=int, default=1000, help="checkpoint interval in steps (0: only at end)")
    p.add_argument("--keep", type=int, default=3, help="checkpoints to keep")
    p.add_argument("--devices", type=int, help="train data-parallel on this many devices (default: one)")
    p.add_argument("--loop-strategy", choices=("auto", *LOOP_STRATEGIES), default="auto",
                   help="how a call runs its steps: a rolled lax.scan, an unrolled one, or one dispatch per step "
                        "(default auto: the measured rule, scan; config.json records the choice)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    common.add_cluster_arguments(p)
    return p


EVALUATIONS_PER_RUN = 10


def tenth_of_run(steps: int, steps_per_call: int) -> int:
    """The default light-evaluation interval: ``steps / 10`` rounded to whole calls of ``steps_per_call`` (at
    least one call), so a run logs about ten evaluations whatever its length."""
    return max(1, round(steps / EVALUATIONS_PER_RUN / steps_per_call)) * steps_per_call


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.resume and args.overwrite:
        raise ConfigError("--resume and --overwrite exclude each other; pass one")
    common.join_cluster(args)
    if args.resume and args.workdir and not (args.model or args.preset):  # the model the run trained
        args.model = rundir.read_description(args.workdir).get("model")
    dataset = data.load(args.dataset)
    family, config, preset_steps = common.family_and_config(args, None if args.resume else dataset.data_shape)
    if args.fields:
        print(common.fields_table(family, config))
        return
    steps = (preset_steps or family.DEFAULT_STEPS) if args.steps is None else args.steps
    if steps <= 0 or args.steps_per_call <= 0 or args.keep <= 0:
        raise ConfigError("--steps, --steps-per-call and --keep must be positive integers")
    if args.eval_every is None:
        args.eval_every = tenth_of_run(steps, args.steps_per_call)
    workdir = args.workdir or Path("runs") / f"{family.NAME}-{Path(args.dataset).stem}"
    if args.resume:  # the run's own config and loop strategy, as config.json recorded them
        description = rundir.read_description(workdir)
        config = family.Config(**cfg_lib.coerce(family.Config, description.get("config", {})))
        if args.loop_strategy == "auto":
            args.loop_strategy = description["loop_strategy"]
    config = cfg_lib.override(config, args.overrides)
    if args.print_config:
        common.print_json(rundir.describe(family, run_config(family, config, dataset, steps), dataset.name,
                                          dataset.data_shape, args.seed, resolve_strategy(args.loop_strategy)))
        return
    outcome = experiment.train_and_evaluate(
        family, config, dataset, workdir=workdir, steps=steps, seed=args.seed, steps_per_call=args.steps_per_call,
        eval_every=args.eval_every, checkpoint_every=args.checkpoint_every, keep=args.keep, resume=args.resume,
        overwrite=args.overwrite, progress=not args.no_progress, devices=args.devices,
        loop_strategy=args.loop_strategy)
    if not cluster.is_primary():  # process 0 reports for the cluster
        return
    report = outcome.report
    if cluster.processes() > 1:
        print(f"trained on {cluster.processes()} processes, {jax.device_count()} devices")
    print(f"{family.NAME} on {dataset.name}: {report['steps']} steps in {report['train_seconds']:.1f} s "
          f"(compile {report['compile_seconds']:.1f} s, {report['steps_per_second']:.0f} steps/s, loop "
          f"{outcome.result.loop_strategy})")
    shown = {key: value for key, value in report.items() if key not in RUN_STATS}
    width = max(map(len, shown), default=0)
    for key, value in shown.items():
        print(f"  {key:{width}s} {value:.4f}" if isinstance(value, float) else f"  {key:{width}s} {value}")
    for note in notes(family):
        print(f"  note: {note}")
    print(f"wrote {workdir}/: {rundir.EVAL_FILE}, metrics.jsonl, config.json, checkpoints/, "
          + ", ".join(p.name for p in outcome.figures))


entry = common.entry_point(main, PROG)

if __name__ == "__main__":
    entry()

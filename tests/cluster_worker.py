"""One process of a multi-process test run (tests/test_cluster.py): joins a localhost cluster, then trains tiny
models on the digits with ``genjax.fit`` (run directories ``WORKDIR/<model>``, checkpoints every 50 steps). Process 0
writes each model's final parameters to ``WORKDIR/<model>.npz``; every process writes the training rows it holds to
``WORKDIR/<model>-rows-<process>.txt``. Errors end it as they end the scripts (``genjax.cli.common.run_main``).
The test sets ``XLA_FLAGS`` for the number of devices per process.

    python tests/cluster_worker.py --coordinator HOST:PORT --num-processes N --process-id I
        --workdir DIR --steps S [--models autoencoder,gan,diverging] [--resume]
"""
import argparse
import os
import sys

import jax
import numpy as np
from jax._src import cache_key
from test_fit import exploding_family

from genjax import autoencoder, data, gan
from genjax.cli import common
from genjax.train import cluster, loop

CONFIGS = {"autoencoder": (autoencoder, autoencoder.Config(hidden_dims=(32,), latent_dim=4, batch_size=32)),
           "gan": (gan, gan.Config(latent_dim=4, hidden_dims=(16,), d_hidden_dims=(16,), batch_size=16,
                                   schedule="constant"))}
DIVERGE_AT = 120  # the model "diverging" is the autoencoder with its loss NaN from this step on



def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    for name in ("--coordinator", "--workdir"):
        p.add_argument(name, required=True)
    for name in ("--num-processes", "--process-id", "--steps"):
        p.add_argument(name, type=int, required=True)
    p.add_argument("--models", default="autoencoder,gan")
    p.add_argument("--resume", action="store_true", help="resume the runs that exist, start the others")
    return p.parse_args(argv)


def read_process_0s_cache_entries() -> None:
    """Let process 1 load what process 0 compiled in an earlier pair from the persistent compilation cache.

    JAX writes the cache from process 0 only, and on the CPU a program's key includes a topology fingerprint that
    differs between the processes of a cluster, and the ids of the devices it runs on; so process 1 compiled every
    program again in every pair (6-15 s of a pair, process 0 waiting for it at the first collective). Both
    processes key the cache by the devices' kinds instead (as JAX does for backends without a topology) and by the
    device assignment renumbered from 0 (as JAX does on GPUs): ``jax._src.cache_key``, a private module (JAX 0.9
    and 0.10 have these functions). The key's other parts (the program, options, versions) stay; an executable
    that did not fit would show in the parameters the tests compare."""
    cache_key._hash_accelerator_config = cache_key._hash_devices
    hash_options = cache_key._hash_serialized_compile_options
    cache_key._hash_serialized_compile_options = lambda hash_obj, options, **_: hash_options(
        hash_obj, options, strip_device_assignment=True)


def main(args: argparse.Namespace) -> None:
    read_process_0s_cache_entries()
    cluster.join(args.coordinator, args.num_processes, args.process_id)
    digits = data.load("digits")
    for name in args.models.split(","):
        family, config = CONFIGS["autoencoder" if name == "diverging" else name]
        if name == "diverging":
            family = exploding_family(DIVERGE_AT)
        workdir = f"{args.workdir}/{name}"
        result = loop.fit(family, config, digits, steps=args.steps, workdir=workdir, steps_per_call=50, eval_every=0,
                          checkpoint_every=50, resume=args.resume and os.path.exists(f"{workdir}/config.json"),
                          progress=False)
        with open(f"{args.workdir}/{name}-rows-{jax.process_index()}.txt", "w") as f:
            f.write(f"{result.resident_rows}\n")
        if cluster.is_primary():
            leaves = jax.tree_util.tree_leaves_with_path(cluster.local_copy(result.state.params))
            np.savez(f"{args.workdir}/{name}.npz", **{jax.tree_util.keystr(k): np.asarray(v) for k, v in leaves})


if __name__ == "__main__":
    arguments = parse(sys.argv[1:])
    sys.exit(common.run_main(lambda: main(arguments), f"cluster_worker[{arguments.process_id}]"))

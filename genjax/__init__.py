"""genjax: autoencoders and deep generative networks in JAX, with pure jit-compiled training steps.

Families: ``genjax.autoencoder``, ``genjax.vae``, ``genjax.gan`` and ``genjax.dgn``. ``genjax.fit`` is the one training loop;
``genjax.load_run`` brings back a trained run. See DESIGN.md for the contract every family keeps.
"""
from genjax import data
from genjax.errors import ConfigError, DataError, GenjaxError, Interrupted, RunError, TrainingDiverged
from genjax.fit import FitResult, fit
from genjax.rundir import load_run
from genjax.state import State

__version__ = "0.1.0"
__all__ = [
    "ConfigError", "DataError", "FitResult", "GenjaxError", "Interrupted", "RunError", "State", "TrainingDiverged",
    "data", "fit", "load_run",
]

"""genjax: autoencoders and deep generative networks in JAX, with pure jit-compiled training steps.

Families: ``genjax.autoencoder``, ``genjax.vae``, ``genjax.gan`` and ``genjax.dgn`` (the contract they
keep: ``genjax.models.family``). ``genjax.fit`` is the one training loop, ``genjax.fit_sweep`` trains a
grid of hyperparameters times seeds in one program (``genjax.fit_seeds``: seeds only), ``genjax.load_run``
brings back a trained run, ``genjax.evaluate`` measures a trained state. docs/ARCHITECTURE.md describes the
layers. Names are imported on first use, so ``import genjax`` is cheap and changes nothing outside genjax.
"""
import importlib

__version__ = "0.1.0"
_EXPORTS = {  # public name -> (module, attribute; None: the module itself)
    "autoencoder": ("genjax.models.autoencoder", None),
    "vae": ("genjax.models.vae", None),
    "gan": ("genjax.models.gan", None),
    "dgn": ("genjax.models.dgn", None),
    "data": ("genjax.core.data", None),
    "losses": ("genjax.nn.losses", None),
    "nets": ("genjax.nn.nets", None),
    "presets": ("genjax.models.presets", None),
    "registry": ("genjax.models.registry", None),
    "fit": ("genjax.experiment", "fit"),
    "train_and_evaluate": ("genjax.experiment", "train_and_evaluate"),
    "fit_seeds": ("genjax.train.sweep", "fit_seeds"),
    "fit_sweep": ("genjax.train.sweep", "fit_sweep"),
    "load_run": ("genjax.train.rundir", "load_run"),
    "evaluate": ("genjax.eval.evaluate", "evaluate"),
    "FitResult": ("genjax.train.loop", "FitResult"),
    "SweepResult": ("genjax.train.sweep", "SweepResult"),
    "State": ("genjax.core.state", "State"),
    **{name: ("genjax.core.errors", name) for name in (
        "ConfigError", "DataError", "EvaluationError", "GenjaxError", "Interrupted", "NonFiniteError", "RunError",
        "Stopped", "TrainingDiverged")},
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'genjax' has no attribute {name!r}")
    module, attribute = _EXPORTS[name]
    value = importlib.import_module(module)
    value = value if attribute is None else getattr(value, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

"""Typed errors. Every message is one line that names the problem and the valid choices."""
import signal


class GenjaxError(Exception):
    """Base class: a mistake in what the user asked for (scripts exit with code 2)."""


class ConfigError(GenjaxError, ValueError):
    """An unknown option, a value of the wrong type, or an impossible hyperparameter."""


class DataError(GenjaxError, ValueError):
    """A data set that cannot be used: missing, unreadable, malformed, empty or non-finite."""


class NonFiniteError(GenjaxError, ValueError):
    """An evaluation's input holds NaN or Inf (samples of a diverged model, say)."""


class EvaluationError(GenjaxError):
    """A run's final evaluation failed after training; its checkpoint and figures are kept."""


class RunError(GenjaxError):
    """A run directory that cannot be used: exists already, missing, or does not match."""


class TrainingDiverged(Exception):
    """The training loss became non-finite (scripts exit with code 3)."""

    def __init__(self, step: int, loss: float):
        self.step, self.loss = step, loss
        super().__init__(f"training diverged: loss is {loss} at step {step}")


class Interrupted(Exception):
    """SIGINT or SIGTERM stopped training after the current call; the state was checkpointed
    (scripts exit with code 128 + the signal number: 130 for SIGINT, 143 for SIGTERM)."""

    def __init__(self, step: int, signum: int, saved: bool):
        self.step, self.signum = step, signum
        where = "checkpoint saved; continue with --resume" if saved else "no workdir, so nothing was saved"
        super().__init__(f"stopped by {signal.Signals(signum).name} at step {step}; {where}")

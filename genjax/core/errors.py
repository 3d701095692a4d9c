"""Typed errors. Every message is one line that names the problem and the valid choices."""
import signal

# The scripts' exit codes (an interrupted run exits with 128 + the signal's number; see Interrupted).
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_DIVERGED = 0, 1, 2, 3


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
    """The training loss became non-finite (scripts exit with code 3). Its message also says which
    checkpoint is kept, once the loop has set ``saved`` and ``checkpoint``."""

    def __init__(self, step: int, loss: float):
        self.step, self.loss = step, loss
        self.saved: bool | None = None  # set by the loop: None without a workdir
        self.checkpoint: int | None = None  # set by the loop: the newest checkpoint kept, if any
        self.run: str | None = None  # set by a sweep: the first run that diverged
        super().__init__(step, loss)

    def __str__(self) -> str:
        what = f"training diverged: loss is {self.loss} at step {self.step}"
        if self.run is not None:
            what += f" in run {self.run}"
        if self.saved is None:
            return what
        if self.checkpoint is None:
            return f"{what}; no checkpoint was saved before it"
        return f"{what}; the newest good checkpoint (step {self.checkpoint}) is kept"


class Stopped(KeyboardInterrupt):
    """SIGINT or SIGTERM outside the loop's clean-stop window (before training, during the final evaluation, or
    a second signal): scripts print one line and exit with 128 + the signal number."""

    def __init__(self, signum: int = signal.SIGINT):
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name}")


class Interrupted(Exception):
    """SIGINT or SIGTERM stopped training after the current call; the state was checkpointed
    (scripts exit with code 128 + the signal number: 130 for SIGINT, 143 for SIGTERM)."""

    def __init__(self, step: int, signum: int, saved: bool):
        self.step, self.signum = step, signum
        where = "checkpoint saved; continue with --resume" if saved else "no workdir, so nothing was saved"
        super().__init__(f"stopped by {signal.Signals(signum).name} at step {step}; {where}")

"""A toy family defined outside genjax, for the registry tests: an independent Gaussian per data element,
fitted by maximum likelihood. One file and one ``registry.register`` call make it a family like the others."""
import dataclasses
import functools

import jax
import jax.numpy as jnp

from genjax.core import optim
from genjax.core.state import State
from genjax.models import fields
from genjax.models.family import Capabilities, batch_context

NAME = "toy_gaussian"
DEFAULT_STEPS = 200
CAPABILITIES = Capabilities(samples=True)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config(optim.OptimizerFields):
    batch_size: int = fields.BATCH_SIZE(64)
    learning_rate: float = optim.LEARNING_RATE(0.05)


def batch_rows(cfg: Config) -> int:
    return cfg.batch_size


def init(key, cfg: Config, batch: dict) -> State:
    data_shape = tuple(batch["x"].shape[1:])
    cfg = cfg.resolved(batch_context(batch, data_shape, DEFAULT_STEPS))
    params = {"gaussian": {"mean": jnp.zeros(data_shape), "log_std": jnp.zeros(data_shape)}}
    return State.create(params=params, optimizers={"gaussian": optim.adam(cfg, cfg.learning_rate)}, config=cfg,
                        data_shape=data_shape)


@jax.jit
def train_step(state: State, batch: dict, key):
    def nll(params):
        mean, log_std = params["gaussian"]["mean"][None], params["gaussian"]["log_std"][None]
        return jnp.mean(0.5 * jnp.square((batch["x"] - mean) / jnp.exp(log_std)) + log_std)

    loss, grads = jax.value_and_grad(nll)(state.params)
    return state.apply_gradients(grads), {"loss": loss}


@functools.partial(jax.jit, static_argnames="n")
def sample(state: State, key, n: int):
    mean, log_std = state.params["gaussian"]["mean"][None], state.params["gaussian"]["log_std"][None]
    x = mean + jnp.exp(log_std) * jax.random.normal(key, (n, *state.data_shape))
    return jnp.clip(x, 0.0, 1.0) if len(state.data_shape) == 3 else x

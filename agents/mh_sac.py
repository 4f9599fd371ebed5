"""MT-MH-SAC: MT-SAC with a shared trunk and one linear output head per task.

Each row's output comes from the head of its own task (Yu et al., Meta-World 2019; the CARE and
MOORE baselines), so tasks share features but not the last layer. One temperature per task.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
from jaxtyping import Array, Float, Int

from mtrl.networks import MLP, MultiHeadDense
from mtrl.types import AgentTraits, EnvSpec

from . import sac
from .sac import SACConfig, SACNetworks, SACState

TRAITS = AgentTraits(loop="replay")
"""What the wiring reads about this agent (`mtrl.types.AgentTraits`)."""

State = SACState


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config(SACConfig):
    """MT-MH-SAC on MT10: 400×3 shared trunk, per-task heads, the MT-SAC learning rates."""


class Network(nn.Module):
    """ReLU trunk on the input, then the linear head of each row's task."""

    hidden_sizes: tuple[int, ...]
    output_size: int
    num_tasks: int

    @nn.compact
    def __call__(
        self, x: Float[Array, "batch inputs"], task_id: Int[Array, " batch"]
    ) -> Float[Array, "batch outputs"]:
        features = MLP(self.hidden_sizes, activate_final=True, name="trunk")(x)
        return MultiHeadDense(self.num_tasks, self.output_size, name="heads")(features, task_id)


def make_networks(spec: EnvSpec, config: Config) -> SACNetworks:
    """Actor heads output mean and log-std; critic heads one Q-value."""
    return sac.make_sac_networks(
        Network(config.hidden_sizes, 2 * spec.action_size, spec.num_tasks),
        Network(config.hidden_sizes, 1, spec.num_tasks),
        spec,
        config,
    )


def init(key: jax.Array, spec: EnvSpec, config: Config) -> State:
    """A fresh MT-MH-SAC agent for the env described by `spec`."""
    return sac.init(key, spec, config, make_networks(spec, config))


act = sac.act
update = sac.update

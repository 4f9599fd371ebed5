"""MT-MH-SAC: MT-SAC with a shared trunk and one linear output head per task.

Each row's output comes from the head of its own task (Yu et al., Meta-World 2019; the CARE and
MOORE baselines), so tasks share features but not the last layer. One temperature per task.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
from jaxtyping import Array, Float, Int

from mtrl.networks import MLP, MultiHeadDense
from mtrl.types import AgentTraits, EnvSpec

from . import sac
from .sac import SACConfig

TRAITS = AgentTraits(loop="replay")
"""What the wiring reads about this agent (`mtrl.types.AgentTraits`)."""


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


def torso(spec: EnvSpec, config: Config, output_size: int) -> Network:
    """Actor and critics are shared trunks with one head per task."""
    return Network(config.hidden_sizes, output_size, spec.num_tasks)


make_networks, init, act, update = sac.sac_agent(torso)

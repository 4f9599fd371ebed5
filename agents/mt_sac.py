"""MT-SAC: one SAC agent shared by all tasks, with one temperature per task.

The networks are plain MLPs; the task enters only through the one-hot id the MT benchmarks append
to the observation (Yu et al., Meta-World, CoRL 2019; the MT-SAC baseline of CARE and MOORE).
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
from jaxtyping import Array, Float, Int

from mtrl.networks import MLP
from mtrl.types import AgentTraits, EnvSpec

from . import sac
from .sac import SACConfig

TRAITS = AgentTraits(loop="replay")
"""What the wiring reads about this agent (`mtrl.types.AgentTraits`)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config(SACConfig):
    """MT-SAC on MT10: 400×3 MLPs, Adam 3e-4 (actor, critic) and 1e-4 (per-task temperatures)."""


class Network(nn.Module):
    """An MLP on the input; `task_id` is part of the shared torso signature and unused."""

    hidden_sizes: tuple[int, ...]
    output_size: int

    @nn.compact
    def __call__(
        self, x: Float[Array, "batch inputs"], task_id: Int[Array, " batch"]
    ) -> Float[Array, "batch outputs"]:
        del task_id
        return MLP((*self.hidden_sizes, self.output_size), name="mlp")(x)


def torso(spec: EnvSpec, config: Config, output_size: int) -> Network:
    """Actor and critics are plain MLPs on the observation, one-hot task id included."""
    return Network(config.hidden_sizes, output_size)


make_networks, init, act, update = sac.sac_agent(torso)

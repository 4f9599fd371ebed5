"""MOORE-SAC: SAC whose actor and critics are mixtures of orthogonal experts.

Hendawy et al., "Multi-Task Reinforcement Learning with Mixture of Orthogonal Experts", ICLR 2024.
Per sample, k expert MLPs read the state (not the task id) and produce k representations that
Gram-Schmidt makes orthonormal; a task-specific linear mix of them (weights from the one-hot task id,
no softmax) goes through tanh into one linear output head per task. The task enters only there.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from mtrl.networks import MultiHeadDense, StackedMLP, gram_schmidt
from mtrl.types import AgentTraits, EnvSpec

from . import sac
from .sac import SACConfig

TRAITS = AgentTraits(loop="replay")
"""What the wiring reads about this agent (`mtrl.types.AgentTraits`)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config(SACConfig):
    """MOORE on MT10: 4 experts of 400×3 (last layer linear, d = 400), the MT-SAC learning rates."""

    one_hot_input: bool = False
    """Experts read the state only; the task enters through the task weights (authors' code: the
    experts' input is the 39-d state). True feeds them the one-hot too (ablation)."""
    num_experts: int = 4
    """Experts k per network (paper: 4 on MT10, 6 on MT50); at most the representation size d."""
    use_gram_schmidt: bool = True
    """Orthonormalise the experts; False gives the paper's "MoE" ablation."""
    authors_init: bool = True
    """Start the weights as the authors' code does (`Network`); False: Flax's defaults."""
    actor_first: bool = True
    """Actor and temperature step before the critic, as in the authors' code (see `SACConfig`)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_num_experts(self.num_experts, self.hidden_sizes[-1])


def check_num_experts(num_experts: int, representation_size: int) -> None:
    """Refuse k < 1, and k > d: at most d vectors in R^d can be orthonormal."""
    if not 1 <= num_experts <= representation_size:
        raise ValueError(
            f"num_experts={num_experts} must be between 1 and the representation size "
            f"{representation_size} (the last of hidden_sizes)"
        )


class Network(nn.Module):
    """A MOORE network: orthogonal experts, task-weighted mix, tanh, per-task linear head.

    With `authors_init`, weights start as in the authors' PyTorch code (`moore/utils/networks_sac.py`):
    task weights xavier-uniform (gain 1) without bias; heads xavier-uniform (gain 1) with PyTorch's
    default bias. Each expert's layers are first given xavier-uniform weights there (ReLU gain inside,
    gain 1 on the last), but the mixture wrapper (`mixture_layers.ParallelLayer`) calls
    `reset_parameters()` on every layer before copying it into each expert, so the experts actually
    start at PyTorch's default, U(±1/√fan_in) for weights and biases: that is what is done here.

    Sows the raw expert outputs `[batch, k, d]` ("expert_outputs") and the representation
    `[batch, d]` ("representation") into the "intermediates" collection, for inspection.
    """

    expert_sizes: tuple[int, ...]
    num_experts: int
    num_tasks: int
    output_size: int
    use_gram_schmidt: bool = True
    authors_init: bool = True

    @nn.compact
    def __call__(
        self, x: Float[Array, "batch inputs"], task_id: Int[Array, " batch"]
    ) -> Float[Array, "batch outputs"]:
        check_num_experts(self.num_experts, self.expert_sizes[-1])
        experts = StackedMLP(
            self.num_experts, self.expert_sizes, torch_init=self.authors_init, name="experts"
        )(x)
        self.sow("intermediates", "expert_outputs", experts)
        if self.use_gram_schmidt:
            experts = gram_schmidt(experts)
        one_hot = jax.nn.one_hot(task_id, self.num_tasks, dtype=x.dtype)
        weight_init = (
            nn.initializers.xavier_uniform() if self.authors_init else nn.initializers.lecun_normal()
        )
        weights = nn.Dense(self.num_experts, use_bias=False, kernel_init=weight_init, name="task_weights")(
            one_hot
        )
        representation = jnp.tanh(jnp.einsum("bk,bkd->bd", weights, experts))
        self.sow("intermediates", "representation", representation)
        heads = MultiHeadDense(self.num_tasks, self.output_size, torch_init=self.authors_init, name="heads")
        return heads(representation, task_id)


def torso(spec: EnvSpec, config: Config, output_size: int) -> Network:
    """Actor and critic are both MOORE networks; the critic's experts read concat(state, action)."""
    return Network(
        expert_sizes=config.hidden_sizes,
        num_experts=config.num_experts,
        num_tasks=spec.num_tasks,
        output_size=output_size,
        use_gram_schmidt=config.use_gram_schmidt,
        authors_init=config.authors_init,
    )


make_networks, init, act, update = sac.sac_agent(torso)

"""Soft-Modularization SAC: a base network of L layers × n modules, softly routed per sample.

Yang, Xu, Wu & Wang, "Multi-Task Reinforcement Learning with Soft Modularization", NeurIPS 2020
(arXiv:2003.13661), §4.1-4.2. Per row, with f(s) the state embedding and h(z_T) a linear task
embedding of the one-hot id (both D-dimensional):
  u = routing MLP(ReLU(f(s) ⊙ h(z_T)))                                         (the routing input)
  p¹ = softmax(W_d¹ u)                                                         (eq. 1)
  pˡ⁺¹ = softmax(W_dˡ⁺¹ ReLU((W_uˡ [p¹, ..., pˡ]) ⊙ u))                         (eq. 2)
  g¹_j = module¹_j(ReLU(f(s))),  gˡ⁺¹_j = moduleˡ⁺¹_j(ReLU(Σ_i pˡ_{j,i} gˡ_i))   (eq. 3)
  out = Dense(ReLU(Σ_i p^L_i g^L_i))
Each pˡ (l < L) is n×n, a softmax over the source modules i for every target module j; p^L weights
the last layer's n modules into the output. The conditioning on all earlier routings and the extra
routing MLP follow the authors' code. MT10 defaults (the authors' MT10 config): L = 2, n = 2, modules
of 256, f = MLP 400-400, routing MLP 256-256; MT50: L = 4, n = 4, modules of 128.

Multi-task optimisation: each task's actor and critic losses are re-weighted by its SAC temperature,
w_i = T · softmax(−log α)_i ∝ 1/α_i (mean weight 1; equal temperatures give the plain mean). A task
whose temperature has fallen (its policy is already confident) gets more weight, a task still
exploring with a large α less. The paper writes softmax(−α); the authors' released code
(`MTSAC.update`, `temp_reweight=True`) takes the softmax of −log α and scales it by T, as does the
PaCo authors' re-implementation: we follow the code, which produced the published numbers. The
temperature loss itself is not re-weighted (nor in their code). Runs through the SAC core's
`TaskWeighting` hook, so `update` stays `sac.update`.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from mtrl.networks import MLP
from mtrl.types import AgentTraits, EnvSpec

from . import sac
from .gradient_methods.core import entropy
from .sac import SACConfig, SACState
from .sac.weighting import TaskWeighting

TRAITS = AgentTraits(loop="replay")
"""What the wiring reads about this agent (`mtrl.types.AgentTraits`)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config(SACConfig):
    """Soft Modularization on MT10: 2 layers of 2 modules of 256, state embedding 400-400."""

    one_hot_input: bool = False
    """The state embedding f(s) reads the state only; the task enters through h(z_T) (authors' code).
    True feeds the one-hot to f too (ablation)."""
    hidden_sizes: tuple[int, ...] = (400, 400)
    """State embedding f(s): ReLU MLP, last layer linear; its last width is D."""
    num_layers: int = 2
    """Module layers L (paper: 2 on MT10, 4 on MT50)."""
    num_modules: int = 2
    """Modules n per layer (paper: 2 on MT10, 4 on MT50)."""
    module_size: int = 256
    """Width of every module (paper: 256 on MT10, 128 on MT50)."""
    routing_sizes: tuple[int, ...] = (256, 256)
    """Routing MLP on f(s) ⊙ h(z_T); its last width is the routing embedding size."""
    reweight_by_temperature: bool = True
    """Weigh each task's actor and critic losses by T · softmax(−log α) (the paper's multi-task
    optimisation, on in the authors' runs); False: the plain mean, and any gradient_method."""

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "routing_sizes", tuple(self.routing_sizes))
        check_sizes(self.num_layers, self.num_modules, self.module_size)
        if not self.routing_sizes or min(self.routing_sizes) < 1:
            raise ValueError(f"routing_sizes must be non-empty positive widths, got {self.routing_sizes}")

    def task_weighting(self) -> TaskWeighting | None:
        """Temperature re-weighting of the actor and critic losses; None when switched off."""
        if not self.reweight_by_temperature:
            return None
        return TaskWeighting(weigh=temperature_weights, weigh_alpha=False, finish=report_weights)


def temperature_weights(
    task_losses: Float[Array, " tasks"], log_alphas: Float[Array, " tasks"]
) -> Float[Array, " tasks"]:
    """w = T · softmax(−log α): weights ∝ 1/α_i, averaging 1 over the tasks."""
    del task_losses
    return log_alphas.shape[0] * jax.nn.softmax(-log_alphas)


def report_weights(state: SACState, task_losses, task_weights, key) -> tuple[SACState, dict[str, jax.Array]]:
    """Nothing to change after the step; log how far the weights are from uniform (entropy log T)."""
    del task_losses, key
    return state, {
        "train/softmod_weight_entropy": entropy(task_weights),
        "train/softmod_weight_max": jnp.max(task_weights),
    }


def check_sizes(num_layers: int, num_modules: int, module_size: int) -> None:
    for name, value in (
        ("num_layers", num_layers),
        ("num_modules", num_modules),
        ("module_size", module_size),
    ):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")


class Routing(nn.Module):
    """Routing probabilities: L - 1 matrices `[batch, n, n]` (rows sum to 1) and a last `[batch, n]`."""

    num_layers: int
    num_modules: int

    @nn.compact
    def __call__(self, u: Float[Array, "batch d"]) -> tuple[list[jax.Array], jax.Array]:
        n = self.num_modules
        probs: list[jax.Array] = []

        def hidden(layer: int) -> jax.Array:  # eq. 1 for the first layer, eq. 2 after it
            if layer == 0:
                return nn.relu(u)
            earlier = jnp.concatenate([p.reshape(-1, n * n) for p in probs], axis=-1)
            return nn.relu(nn.Dense(u.shape[-1], name=f"up_{layer}")(earlier) * u)

        for layer in range(self.num_layers - 1):
            logits = nn.Dense(n * n, name=f"down_{layer}")(hidden(layer))
            probs.append(jax.nn.softmax(logits.reshape(-1, n, n), axis=-1))
        last_layer = self.num_layers - 1
        last = jax.nn.softmax(nn.Dense(n, name=f"down_{last_layer}")(hidden(last_layer)), axis=-1)
        return probs, last


class Network(nn.Module):
    """The soft-modular torso. Sows the routing probabilities ("routing_probs", "last_routing_probs")."""

    hidden_sizes: tuple[int, ...]
    output_size: int
    num_tasks: int
    num_layers: int
    num_modules: int
    module_size: int
    routing_sizes: tuple[int, ...]

    @nn.compact
    def __call__(
        self, x: Float[Array, "batch inputs"], task_id: Int[Array, " batch"]
    ) -> Float[Array, "batch outputs"]:
        check_sizes(self.num_layers, self.num_modules, self.module_size)
        state = MLP(self.hidden_sizes, name="state_embedding")(x)
        one_hot = jax.nn.one_hot(task_id, self.num_tasks, dtype=x.dtype)
        task = nn.Dense(self.hidden_sizes[-1], name="task_embedding")(one_hot)
        u = MLP(self.routing_sizes, name="routing_mlp")(nn.relu(state * task))
        probs, last = Routing(self.num_layers, self.num_modules, name="routing")(u)
        self.sow("intermediates", "routing_probs", probs)
        self.sow("intermediates", "last_routing_probs", last)

        modules = lambda layer, in_axes: nn.vmap(  # n independent Dense modules, kernels on axis 0
            nn.Dense,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            in_axes=in_axes,
            out_axes=1,
            axis_size=self.num_modules,
        )(self.module_size, name=f"modules_{layer}")
        g = modules(0, None)(nn.relu(state))  # [batch, n, module_size]
        for layer in range(1, self.num_layers):
            g = modules(layer, 1)(nn.relu(jnp.einsum("bji,bid->bjd", probs[layer - 1], g)))
        out = nn.relu(jnp.einsum("bi,bid->bd", last, g))
        return nn.Dense(self.output_size, name="output")(out)


def torso(spec: EnvSpec, config: Config, output_size: int) -> Network:
    """Actor and critics are soft-modular networks; the critic's reads concat(obs, action)."""
    return Network(
        hidden_sizes=config.hidden_sizes,
        output_size=output_size,
        num_tasks=spec.num_tasks,
        num_layers=config.num_layers,
        num_modules=config.num_modules,
        module_size=config.module_size,
        routing_sizes=config.routing_sizes,
    )


make_networks, init, act, update = sac.sac_agent(torso)

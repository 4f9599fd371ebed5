"""PaCo-SAC: every task's network is a learned linear combination of K shared parameter sets.

Sun, Zhang, Xu & Tomizuka, "PaCo: Parameter-Compositional Multi-Task Reinforcement Learning",
NeurIPS 2022 (arXiv:2210.11653), §4.1-4.3. A parameter set Φ = [φ_1, ..., φ_K] (K full MLPs of the
same shape) is shared; task τ owns a composition vector w_τ ∈ R^K and runs the MLP whose parameters
are θ_τ = Φ w_τ = Σ_k w_τ[k] φ_k (eq. 2). Actor and critics are each such a network.

Implementation: per layer, y = x (Σ_k w_k W_k) + Σ_k w_k b_k = [w_1 x, ..., w_K x] · [W_1; ...; W_K] + w·B,
one `[batch, K·in] × [K·in, out]` matmul: the same FLOPs as K separate layers, exactly the paper's
composed layer by linearity, and no per-row `[batch, in, out]` kernel (0.8 GB at MT10 shapes).

Stability (§4.3): tasks whose loss exceeds a threshold are masked out of the total loss, and their
composition vectors are reset to the mean of the other tasks' (`diverged_tasks`, `masked_total`,
`reset_compositions` here, all pure). Wiring them into `update` needs per-task losses from the SAC
core, which does not return them yet; until then `update` is plain `sac.update`.
MT10 default: K = 5 components of 400×3 (the paper's MT10 setting, as re-implementations use it).
"""

from __future__ import annotations

import dataclasses
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from mtrl.types import EnvSpec, PyTree

from . import sac
from .sac import SACConfig, SACNetworks, SACState

State = SACState


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config(SACConfig):
    """PaCo on MT10: K = 5 parameter sets of 400×3 MLPs, the MT-SAC learning rates."""

    num_components: int = 5
    """Parameter sets K (at most the number of tasks)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_components < 1:
            raise ValueError(f"num_components must be >= 1, got {self.num_components}")


def check_num_components(num_components: int, num_tasks: int) -> None:
    """Refuse K < 1, and K > tasks: the task networks would span at most `tasks` of the K directions."""
    if not 1 <= num_components <= num_tasks:
        raise ValueError(
            f"num_components={num_components} must be between 1 and the number of tasks {num_tasks}"
        )


class CompositionalDense(nn.Module):
    """A dense layer whose kernel and bias are each row's mix Σ_k w[b, k] (W_k, b_k)."""

    features: int
    num_components: int

    @nn.compact
    def __call__(
        self, x: Float[Array, "batch inputs"], w: Float[Array, "batch k"]
    ) -> Float[Array, "batch features"]:
        k, inputs = self.num_components, x.shape[-1]
        kernel_init = nn.initializers.lecun_normal(batch_axis=(0,))
        kernel = self.param("kernel", kernel_init, (k, inputs, self.features))
        bias = self.param("bias", nn.initializers.zeros_init(), (k, self.features))
        mixed = (w[:, :, None] * x[:, None, :]).reshape(x.shape[0], k * inputs)
        return mixed @ kernel.reshape(k * inputs, self.features) + w @ bias


class Network(nn.Module):
    """The PaCo torso: a ReLU MLP (last layer linear) whose every layer is compositional.

    `composition` `[tasks, K]` starts at 1/√K for every task, so each composed kernel starts with
    the variance of one lecun-normal kernel (Σ_k w_k² = 1) and all tasks start from the same network.
    """

    layer_sizes: tuple[int, ...]
    num_components: int
    num_tasks: int

    @nn.compact
    def __call__(
        self, x: Float[Array, "batch inputs"], task_id: Int[Array, " batch"]
    ) -> Float[Array, "batch outputs"]:
        check_num_components(self.num_components, self.num_tasks)
        init = nn.initializers.constant(1.0 / math.sqrt(self.num_components))
        compositions = self.param("composition", init, (self.num_tasks, self.num_components))
        w = compositions[task_id]
        for i, size in enumerate(self.layer_sizes):
            x = CompositionalDense(size, self.num_components, name=f"dense_{i}")(x, w)
            if i < len(self.layer_sizes) - 1:
                x = nn.relu(x)
        return x


def compose_params(params: PyTree, task: int) -> PyTree:
    """θ_task = Σ_k w_task[k] φ_k as the params of a plain `mtrl.networks.MLP` of the same sizes."""
    tree = params["params"]
    w = tree["composition"][task]
    layers = {
        name: {"kernel": jnp.einsum("k,kio->io", w, p["kernel"]), "bias": w @ p["bias"]}
        for name, p in tree.items()
        if name != "composition"
    }
    return {"params": layers}


def diverged_tasks(task_losses: Float[Array, " tasks"], threshold: float) -> Bool[Array, " tasks"]:
    """Tasks to mask out and reset: loss above `threshold`, or not finite (§4.3)."""
    return ~(task_losses <= threshold)


def masked_total(task_losses: Float[Array, " tasks"], diverged: Bool[Array, " tasks"]) -> Float[Array, ""]:
    """Σ of the kept tasks' losses (loss mask-out); a diverged task contributes no gradient."""
    return jnp.sum(jnp.where(diverged, 0.0, task_losses))


def reset_compositions(params: PyTree, diverged: Bool[Array, " tasks"]) -> PyTree:
    """Set each diverged task's w to the mean w of the other tasks (w-reset, §4.3).

    Works on actor params `[tasks, K]` and stacked critic params `[critics, tasks, K]` alike. With
    no healthy task left there is nothing to copy from, and the compositions stay as they were.
    """
    tree = params["params"]
    w = tree["composition"]
    healthy = (~diverged).astype(w.dtype)
    count = jnp.sum(healthy)
    mean = jnp.einsum("t,...tk->...k", healthy, w) / jnp.maximum(count, 1.0)
    reset = jnp.where(diverged[:, None] & (count > 0), mean[..., None, :], w)
    return {**params, "params": {**tree, "composition": reset}}


def make_networks(spec: EnvSpec, config: Config) -> SACNetworks:
    """Actor and critics are PaCo networks (separate parameter sets and compositions)."""
    check_num_components(config.num_components, spec.num_tasks)
    network = lambda output_size: Network(
        layer_sizes=(*config.hidden_sizes, output_size),
        num_components=config.num_components,
        num_tasks=spec.num_tasks,
    )
    return SACNetworks(actor=network(2 * spec.action_size), critic=network(1))


def init(key: jax.Array, spec: EnvSpec, config: Config) -> State:
    """A fresh PaCo-SAC agent for the env described by `spec`."""
    return sac.init(key, spec, config, make_networks(spec, config))


act = sac.act
update = sac.update

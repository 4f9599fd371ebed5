"""PaCo-SAC: every task's network is a learned linear combination of K shared parameter sets.

Sun, Zhang, Xu & Tomizuka, "PaCo: Parameter-Compositional Multi-Task Reinforcement Learning",
NeurIPS 2022 (arXiv:2210.11653), §4.1-4.3. A parameter set Φ = [φ_1, ..., φ_K] (K full MLPs of the
same shape) is shared; task τ owns a composition vector w_τ ∈ R^K and runs the MLP whose parameters
are θ_τ = Φ w_τ = Σ_k w_τ[k] φ_k (eq. 2). Actor and critics are each such a network.

Implementation: per layer, y = x (Σ_k w_k W_k) + Σ_k w_k b_k = [w_1 x, ..., w_K x] · [W_1; ...; W_K] + w·B,
one `[batch, K·in] × [K·in, out]` matmul: the same FLOPs as K separate layers, exactly the paper's
composed layer by linearity, and no per-row `[batch, in, out]` kernel (0.8 GB at MT10 shapes).

Stability (§4.3), in the SAC core's `TaskWeighting` hook, so `update` stays `sac.update`:
loss mask-out — a task whose loss exceeds ε leaves that step's total loss (its critic, actor and
temperature terms), and w-reset — its composition vectors are rebuilt from the healthy tasks'.
The loss compared with ε is the task's critic loss (SAC eq. 5 over its rows), computed in the
critic's own forward pass: a diverging Q-function is what the measure guards against, and the
critic loss is its direct symptom. ε = 3e3 and the random interpolation of the reset are the
authors' MT10 settings (`task_loss_threshold=3e3`, `reset_task_method="interpolate"` in their
released ALF code, `paco_mtsac.py`, where the threshold tests the task's summed SAC loss).
MT10 default: K = 5 components of 400×3 (the paper's MT10 setting, as re-implementations use it).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Bool, Float, Int

from mtrl.types import AgentTraits, EnvSpec, PyTree

from . import sac
from .sac import SACConfig, SACState
from .sac.weighting import TaskWeighting

TRAITS = AgentTraits(loop="replay")
"""What the wiring reads about this agent (`mtrl.types.AgentTraits`)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config(SACConfig):
    """PaCo on MT10: K = 5 parameter sets of 400×3 MLPs, the MT-SAC learning rates."""

    one_hot_input: bool = False
    """The composed MLPs read the state only; the task enters through its composition vector (the
    authors' code). True feeds them the one-hot too (ablation)."""
    num_components: int = 5
    """Parameter sets K (at most the number of tasks)."""
    loss_threshold: float | None = 3e3
    """ε of loss mask-out: a task whose critic loss (SAC eq. 5 over its rows) exceeds it, or is not
    finite, is masked out of the step and reset (authors' MT10 value 3e3); None: neither measure."""
    reset: str = "interpolate"
    """w-reset of a masked task: interpolate (a random convex combination of the healthy tasks' w,
    the authors' default), mean (their mean), off (mask-out only)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_components < 1:
            raise ValueError(f"num_components must be >= 1, got {self.num_components}")
        if self.loss_threshold is not None and not (
            math.isfinite(self.loss_threshold) and self.loss_threshold > 0
        ):
            raise ValueError(f"loss_threshold must be a finite number > 0 or None, got {self.loss_threshold}")
        if self.reset not in RESETS:
            raise ValueError(f"unknown reset {self.reset!r}; valid: {', '.join(RESETS)}")

    def task_weighting(self) -> TaskWeighting | None:
        """Loss mask-out with w-reset (§4.3); None without a threshold."""
        if self.loss_threshold is None:
            return None
        return TaskWeighting(
            weigh=functools.partial(mask_weights, threshold=self.loss_threshold),
            weigh_alpha=True,
            finish=functools.partial(finish_step, reset=self.reset),
        )


RESETS = ("interpolate", "mean", "off")


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


def mask_weights(
    task_losses: Float[Array, " tasks"], log_alphas: Float[Array, " tasks"], *, threshold: float
) -> Float[Array, " tasks"]:
    """Loss mask-out as task weights: 0 for a diverged task, 1 for the others.

    Σ_τ w_τ L_τ is the paper's total loss with the diverged tasks' terms dropped; with every w = 1
    the SAC core computes the plain loss, bit for bit.
    """
    del log_alphas
    return jnp.where(diverged_tasks(task_losses, threshold), 0.0, 1.0)


def reset_weights(
    key: jax.Array, diverged: Bool[Array, " tasks"], method: str
) -> Float[Array, "tasks tasks"]:
    """Row τ: the convex weights over the healthy tasks that rebuild a diverged task τ's w.

    interpolate: uniform draws normalised to sum 1 (the authors' "interpolate"); mean: equal
    weights. Rows of healthy tasks are unused (zero).
    """
    healthy = (~diverged).astype(jnp.float32)
    shape = (diverged.shape[0],) * 2
    draws = jax.random.uniform(key, shape) if method == "interpolate" else jnp.ones(shape)
    mix = draws * healthy[None, :]
    total = jnp.sum(mix, axis=1, keepdims=True)
    return jnp.where(diverged[:, None] & (total > 0), mix / jnp.where(total > 0, total, 1.0), 0.0)


def remix_compositions(
    params: PyTree, rows: Bool[Array, " tasks"], mix: Float[Array, "tasks tasks"]
) -> PyTree:
    """Replace the composition of every task in `rows` by its `mix` of all tasks' compositions.

    Works on actor params `[tasks, K]`, stacked critic params `[critics, tasks, K]` and Adam moments
    of either shape; the other rows and every shared parameter set stay exactly as they were.
    """
    tree = params["params"]
    w = tree["composition"]
    mixed = jnp.einsum("ts,...sk->...tk", mix, w, precision=jax.lax.Precision.HIGHEST)
    return {**params, "params": {**tree, "composition": jnp.where(rows[:, None], mixed, w)}}


def reset_moments(
    opt_state: optax.OptState, rows: Bool[Array, " tasks"], mix: Float[Array, "tasks tasks"]
) -> optax.OptState:
    """Adam moments of rebuilt compositions: first moment 0, second the same mix as w.

    A masked task's w gets no gradient, so its stale first moment would keep moving the rebuilt w
    along the diverging direction for ~1/(1 − β1) = 10 steps; zeroed, the next steps restart from
    that task's fresh gradients. A zero second moment would make the first of those steps ≈ 3× the
    learning rate (Adam's bias correction counts all steps, not the entry's), and the diverged
    task's own, inflated one would stall its w for ~1/(1 − β2) = 1000 steps; the healthy tasks' mix
    has the scale of gradients that w now sees.
    """

    def reset(node):
        if not isinstance(node, optax.ScaleByAdamState):
            return node
        mu = remix_compositions(node.mu, rows, jnp.zeros_like(mix))
        return node._replace(mu=mu, nu=remix_compositions(node.nu, rows, mix))

    return jax.tree.map(reset, opt_state, is_leaf=lambda node: isinstance(node, optax.ScaleByAdamState))


RESET_STREAM = 0x5AC0
"""Folded into the update's key for the reset draws, leaving the SAC core's own key splits untouched."""


def finish_step(
    state: SACState,
    task_losses: Float[Array, " tasks"],
    task_weights: Float[Array, " tasks"],
    key: jax.Array,
    *,
    reset: str,
) -> tuple[SACState, dict[str, Float[Array, ""]]]:
    """w-reset after the masked SAC step: rebuild each masked task's w from the healthy tasks'.

    Actor, critics and target critics are rebuilt with the same mix (in the authors' code one w
    serves them all; a target left at the diverged w would keep feeding the huge targets that
    tripped ε for ~1/τ steps), and the compositions' Adam moments with them (`reset_moments`).
    With no healthy task there is nothing to rebuild from, and nothing changes.
    """
    diverged = task_weights == 0
    metrics = {
        "train/paco_masked_tasks": jnp.sum(diverged).astype(jnp.float32),
        "train/paco_max_task_critic_loss": jnp.max(task_losses),
    }
    if reset == "off":
        return state, metrics
    rows = diverged & jnp.any(~diverged)
    mix = reset_weights(jax.random.fold_in(key, RESET_STREAM), diverged, reset)
    state = state.replace(
        actor_params=remix_compositions(state.actor_params, rows, mix),
        critic_params=remix_compositions(state.critic_params, rows, mix),
        target_critic_params=remix_compositions(state.target_critic_params, rows, mix),
        actor_opt_state=reset_moments(state.actor_opt_state, rows, mix),
        critic_opt_state=reset_moments(state.critic_opt_state, rows, mix),
    )
    return state, metrics


def torso(spec: EnvSpec, config: Config, output_size: int) -> Network:
    """Actor and critics are PaCo networks (separate parameter sets and compositions)."""
    check_num_components(config.num_components, spec.num_tasks)
    return Network(
        layer_sizes=(*config.hidden_sizes, output_size),
        num_components=config.num_components,
        num_tasks=spec.num_tasks,
    )


make_networks, init, act, update = sac.sac_agent(torso)

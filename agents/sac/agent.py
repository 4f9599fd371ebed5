"""The SAC core shared by MT-SAC, MT-MH-SAC and MOORE-SAC: state, `init`, `act`, `update`.

An agent module builds its `SACNetworks` and calls `init`; `act` and `update` read everything else
from the state, whose static fields (config, networks, sizes) make it self-describing under jit,
vmap and orbax.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct
from jaxtyping import Array, Float, Int

from mtrl.gradients import gradient_step
from mtrl.types import EnvSpec, PyTree, Transition

from . import losses
from .config import SACConfig
from .networks import SACNetworks, init_params, policy, sample_action


@struct.dataclass
class SACState:
    """Everything one SAC agent carries between updates; critic params stack on a critic axis."""

    actor_params: PyTree
    critic_params: PyTree
    target_critic_params: PyTree
    actor_opt_state: optax.OptState
    critic_opt_state: optax.OptState
    log_alphas: Float[Array, " tasks"]
    alpha_opt_state: optax.OptState
    step: Int[Array, ""]
    config: SACConfig = struct.field(pytree_node=False)
    networks: SACNetworks = struct.field(pytree_node=False)
    action_size: int = struct.field(pytree_node=False)
    num_tasks: int = struct.field(pytree_node=False)

    @property
    def target_entropy(self) -> float:
        """H̄ of the temperature objective: the config's value, else −|A|."""
        if self.config.target_entropy is not None:
            return self.config.target_entropy
        return -float(self.action_size)


class Optimizers(NamedTuple):
    """Adam for actor, critics and temperatures.

    Rebuilt from the static config at every trace rather than stored: optax transforms compare by
    identity, which would make two equal states look structurally different.
    """

    actor: optax.GradientTransformation
    critic: optax.GradientTransformation
    alpha: optax.GradientTransformation


def make_optimizers(config: SACConfig) -> Optimizers:
    return Optimizers(
        actor=optax.adam(config.actor_lr),
        critic=optax.adam(config.critic_lr),
        alpha=optax.adam(config.alpha_lr),
    )


@functools.partial(jax.jit, static_argnames=("spec", "config", "networks"))
def init(key: jax.Array, spec: EnvSpec, config: SACConfig, networks: SACNetworks) -> SACState:
    """Fresh parameters, target critics equal to the critics, every task's alpha at `initial_alpha`.

    Jitted: run eagerly, Flax initialisation dispatches (and compiles) hundreds of tiny ops.
    """
    actor_params, critic_params = init_params(networks, key, spec, config.num_critics)
    log_alphas = jnp.full((spec.num_tasks,), math.log(config.initial_alpha), jnp.float32)
    optimizers = make_optimizers(config)
    return SACState(
        actor_params=actor_params,
        critic_params=critic_params,
        target_critic_params=critic_params,
        actor_opt_state=optimizers.actor.init(actor_params),
        critic_opt_state=optimizers.critic.init(critic_params),
        log_alphas=log_alphas,
        alpha_opt_state=optimizers.alpha.init(log_alphas),
        step=jnp.zeros((), jnp.int32),
        config=config,
        networks=networks,
        action_size=spec.action_size,
        num_tasks=spec.num_tasks,
    )


def act(
    state: SACState,
    obs: Float[Array, "batch obs"],
    task_id: Int[Array, " batch"],
    key: jax.Array,
    deterministic: bool,
) -> Float[Array, "batch act"]:
    """Sample a ~ π(·|s) squashed into [-1, 1]; `deterministic` (a Python bool) gives tanh(mean)."""
    mean, log_std = policy(state.networks, state.actor_params, obs, task_id, state.config)
    if deterministic:
        return jnp.tanh(mean)
    action, _ = sample_action(mean, log_std, key)
    return action


def update(
    state: SACState, batch: Transition, key: jax.Array
) -> tuple[SACState, dict[str, Float[Array, ""]]]:
    """One SAC gradient step (arXiv:1812.05905, Algorithm 1) on a task-balanced batch."""
    config, networks = state.config, state.networks
    optimizers = make_optimizers(config)
    critic_key, actor_key = jax.random.split(key)

    critic_fn = functools.partial(
        losses.critic_loss, networks=networks, config=config, actor_params=state.actor_params,
        target_critic_params=state.target_critic_params, log_alphas=state.log_alphas,
    )  # fmt: skip
    critic = gradient_step(
        critic_fn, optimizers.critic, state.critic_params, state.critic_opt_state, batch, critic_key
    )

    actor_fn = functools.partial(
        losses.actor_loss, networks=networks, config=config, critic_params=critic.params,
        log_alphas=state.log_alphas,
    )  # fmt: skip
    actor = gradient_step(
        actor_fn, optimizers.actor, state.actor_params, state.actor_opt_state, batch, actor_key
    )

    alpha_fn = functools.partial(losses.alpha_loss, target_entropy=state.target_entropy)
    alpha = gradient_step(
        alpha_fn, optimizers.alpha, state.log_alphas, state.alpha_opt_state,
        actor.aux.log_prob, batch.task_id,
    )  # fmt: skip

    target_critic_params = optax.incremental_update(critic.params, state.target_critic_params, config.tau)
    new_state = state.replace(
        actor_params=actor.params,
        critic_params=critic.params,
        target_critic_params=target_critic_params,
        actor_opt_state=actor.opt_state,
        critic_opt_state=critic.opt_state,
        log_alphas=alpha.params,
        alpha_opt_state=alpha.opt_state,
        step=state.step + 1,
    )
    metrics = {
        "train/critic_loss": critic.loss,
        "train/actor_loss": actor.loss,
        "train/alpha_loss": alpha.loss,
        "train/alpha_mean": jnp.mean(jnp.exp(state.log_alphas)),
        "train/q_mean": critic.aux.q_mean,
        "train/target_q_mean": critic.aux.target_mean,
        "train/entropy": -jnp.mean(actor.aux.log_prob),
        "train/critic_grad_norm": critic.grad_norm,
        "train/actor_grad_norm": actor.grad_norm,
    }
    return new_state, metrics

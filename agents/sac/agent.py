"""The SAC core shared by every SAC-family agent: state, `init`, `act`, `update`, and `sac_agent`.

An agent module writes its torso and gets its public functions from `sac_agent`; `act` and `update`
read everything else from the state, whose static fields (config, networks, sizes) make it
self-describing under jit, vmap and orbax.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct
from jaxtyping import Array, Float, Int

from mtrl.gradients import gradient_step
from mtrl.types import EnvSpec, PyTree, Transition

from .. import gradient_methods as gm
from . import losses
from .config import SACConfig
from .networks import SACNetworks, init_params, make_sac_networks, policy, sample_action


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
    critic_method_state: PyTree
    """State of the critic's gradient method (task weights, logits, ...); () when stateless."""
    actor_method_state: PyTree
    """State of the actor's gradient method; () when stateless or when the actor takes the mean."""
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


class GradientMethods(NamedTuple):
    """The gradient method of the critic and of the actor; None: the mean, in one backward pass.

    The twin critics form one network here: each task gets one gradient over all critic params.
    FAMO and GradNorm balance tasks by their loss ratios, which need positive losses; the actor's
    loss E[α log π − Q] is unbounded below, so those two balance the critic and leave the actor
    the mean (FAMO's authors do the same on MT10). Rebuilt per trace, as `Optimizers` is.
    """

    critic: gm.GradientMethod | None
    actor: gm.GradientMethod | None


# name → the critic's and the actor's method for a config.
METHODS: dict[str, Callable[[SACConfig], GradientMethods]] = {
    "mean": lambda c: GradientMethods(None, None),
    "pcgrad": lambda c: GradientMethods(gm.pcgrad(), gm.pcgrad()),
    "cagrad": lambda c: GradientMethods(gm.cagrad(c.cagrad_c), gm.cagrad(c.cagrad_c)),
    "gradnorm": lambda c: GradientMethods(gm.gradnorm(c.gradnorm_alpha, c.gradnorm_lr), None),
    "famo": lambda c: GradientMethods(gm.famo(c.famo_gamma, c.famo_lr), None),
    "aligned_mtl": lambda c: GradientMethods(gm.aligned_mtl(), gm.aligned_mtl()),
}


def make_gradient_methods(config: SACConfig) -> GradientMethods:
    return METHODS[config.gradient_method](config)  # the name was checked by SACConfig


def init_method_state(method: gm.GradientMethod | None, num_tasks: int) -> PyTree:
    return () if method is None else method.init(num_tasks)


def take_step(
    method: gm.GradientMethod | None,
    loss_fn: Callable[..., tuple[Float[Array, ""], Any]],
    optimizer: optax.GradientTransformation,
    params: PyTree,
    opt_state: optax.OptState,
    method_state: PyTree,
    batch: Transition,
    key: jax.Array,
    num_tasks: int,
) -> gm.TaskGradientStep:
    """A gradient step on the mean loss (method None) or on the method's per-task combination.

    Per-task aux comes back as for the whole batch: per-task scalars averaged (tasks have equal
    row counts), per-row arrays flattened back to task-major rows.
    """
    if method is None:
        step = gradient_step(loss_fn, optimizer, params, opt_state, batch, key)
        return gm.TaskGradientStep(
            step.params, step.opt_state, step.loss, step.aux, step.grad_norm, method_state, {}
        )
    step = gm.task_gradient_step(
        loss_fn, method, optimizer, params, opt_state, method_state, batch, key, num_tasks
    )
    merge = lambda x: jnp.mean(x, axis=0) if x.ndim == 1 else x.reshape(-1, *x.shape[2:])
    return step._replace(aux=jax.tree.map(merge, step.aux))


@functools.partial(jax.jit, static_argnames=("spec", "config", "networks"))
def init(key: jax.Array, spec: EnvSpec, config: SACConfig, networks: SACNetworks) -> SACState:
    """Fresh parameters, target critics equal to the critics, every task's alpha at `initial_alpha`.

    Jitted: run eagerly, Flax initialisation dispatches (and compiles) hundreds of tiny ops.
    """
    actor_params, critic_params = init_params(networks, key, spec, config.num_critics)
    log_alphas = jnp.full((spec.num_tasks,), math.log(config.initial_alpha), jnp.float32)
    optimizers = make_optimizers(config)
    methods = make_gradient_methods(config)
    return SACState(
        actor_params=actor_params,
        critic_params=critic_params,
        target_critic_params=critic_params,
        actor_opt_state=optimizers.actor.init(actor_params),
        critic_opt_state=optimizers.critic.init(critic_params),
        log_alphas=log_alphas,
        alpha_opt_state=optimizers.alpha.init(log_alphas),
        step=jnp.zeros((), jnp.int32),
        critic_method_state=init_method_state(methods.critic, spec.num_tasks),
        actor_method_state=init_method_state(methods.actor, spec.num_tasks),
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
    """One SAC gradient step (arXiv:1812.05905, Algorithm 1) on a task-balanced batch.

    Critic step, then actor step (against the updated critics), then temperature step, then the Polyak
    update of the target critics; with `config.actor_first`, actor and temperature step first and the
    critic's target uses the updated policy and temperatures (the order of the MOORE authors' code).
    Until `config.critic_only_updates` steps are done, only the critics move.

    With a gradient method other than "mean", the batch must be task-major (`mtrl.replay.sample`).
    A config whose `task_weighting()` is not None re-weights the tasks' losses (`TaskWeighting`).
    """
    config, networks = state.config, state.networks
    optimizers = make_optimizers(config)
    methods = make_gradient_methods(config)
    weighting = config.task_weighting()
    critic_key, actor_key = jax.random.split(key)
    # The first `critic_only_updates` steps train the critics alone (MOORE's actor warm-up): the actor
    # and temperature steps are computed but not kept.
    actor_active = state.step >= config.critic_only_updates
    if config.critic_only_updates:
        keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(actor_active, n, o), new, old)
    else:  # no selects in the hot path when there is nothing to hold back
        keep = lambda new, old: new

    def critic_step(actor_params: PyTree, log_alphas: jax.Array) -> gm.TaskGradientStep:
        weigh = None if weighting is None else functools.partial(weighting.weigh, log_alphas=log_alphas)
        critic_fn = functools.partial(
            losses.critic_loss, networks=networks, config=config, actor_params=actor_params,
            target_critic_params=state.target_critic_params, log_alphas=log_alphas, weigh=weigh,
        )  # fmt: skip
        return take_step(
            methods.critic, critic_fn, optimizers.critic, state.critic_params, state.critic_opt_state,
            state.critic_method_state, batch, critic_key, state.num_tasks,
        )  # fmt: skip

    def actor_and_alpha_steps(critic_params: PyTree, task_weights: jax.Array | None):
        actor_fn = functools.partial(
            losses.actor_loss, networks=networks, config=config, critic_params=critic_params,
            log_alphas=state.log_alphas, task_weights=task_weights,
        )  # fmt: skip
        actor = take_step(
            methods.actor, actor_fn, optimizers.actor, state.actor_params, state.actor_opt_state,
            state.actor_method_state, batch, actor_key, state.num_tasks,
        )  # fmt: skip
        alpha_fn = functools.partial(
            losses.alpha_loss, target_entropy=state.target_entropy, form=config.temperature_loss,
            task_weights=task_weights if weighting is not None and weighting.weigh_alpha else None,
        )  # fmt: skip
        alpha = gradient_step(
            alpha_fn, optimizers.alpha, state.log_alphas, state.alpha_opt_state,
            actor.aux.log_prob, batch.task_id,
        )  # fmt: skip
        actor = actor._replace(
            params=keep(actor.params, state.actor_params),
            opt_state=keep(actor.opt_state, state.actor_opt_state),
            method_state=keep(actor.method_state, state.actor_method_state),
        )
        alpha = alpha._replace(
            params=keep(alpha.params, state.log_alphas),
            opt_state=keep(alpha.opt_state, state.alpha_opt_state),
        )
        return actor, alpha

    if config.actor_first:  # the config refuses this order with task weighting
        actor, alpha = actor_and_alpha_steps(state.critic_params, None)
        critic = critic_step(actor.params, alpha.params)
        task_weights = None
    else:
        critic = critic_step(state.actor_params, state.log_alphas)
        task_weights = None if weighting is None else critic.aux.task_weights
        actor, alpha = actor_and_alpha_steps(critic.params, task_weights)

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
        critic_method_state=critic.method_state,
        actor_method_state=actor.method_state,
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
        "train/actor_active": actor_active.astype(jnp.float32),
        **{f"train/critic_{name}": value for name, value in critic.metrics.items()},
        **{f"train/actor_{name}": value for name, value in actor.metrics.items()},
    }
    if weighting is not None:
        new_state, extra = weighting.finish(new_state, critic.aux.task_losses, task_weights, key)
        metrics |= extra
    return new_state, metrics


class SACAgent(NamedTuple):
    """The public functions of a SAC-family agent module, as `sac_agent` builds them from its torso."""

    make_networks: Callable[[EnvSpec, SACConfig], SACNetworks]
    init: Callable[[jax.Array, EnvSpec, SACConfig], SACState]
    act: Callable[..., Float[Array, "batch act"]]
    update: Callable[[SACState, Transition, jax.Array], tuple[SACState, dict[str, Float[Array, ""]]]]


def sac_agent(torso: Callable[[EnvSpec, Any, int], nn.Module]) -> SACAgent:
    """`make_networks`, `init`, `act` and `update` of the SAC agent whose networks `torso` builds.

    `torso(spec, config, output_size)` is the agent's own part: a Flax module called as
    `module(x, task_id) -> [batch, output_size]`. The actor is one with 2 · action_size outputs (mean
    and log-std), each critic one with a single Q-value. An agent module ends with
    `make_networks, init, act, update = sac.sac_agent(torso)`.
    """

    def make_networks(spec: EnvSpec, config: SACConfig) -> SACNetworks:
        """The actor's and the critics' torsos for the env described by `spec`."""
        actor = torso(spec, config, 2 * spec.action_size)
        return make_sac_networks(actor, torso(spec, config, 1), spec, config)

    def init_agent(key: jax.Array, spec: EnvSpec, config: SACConfig) -> SACState:
        """A fresh agent for the env described by `spec`."""
        return init(key, spec, config, make_networks(spec, config))

    return SACAgent(make_networks, init_agent, act, update)

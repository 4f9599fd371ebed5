"""PEARL's state, `init` and one gradient step (Algorithm 1's inner loop): critic + encoder, V, actor,
target V, on a meta-batch of goals."""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct
from jaxtyping import Array, Int

from mtrl.gradients import gradient_step
from mtrl.types import EnvSpec, PyTree, Transition

from .config import Config
from .inference import context_features
from .losses import actor_loss, critic_loss, value_loss
from .networks import Networks, make_networks
from .replay import GoalReplay, init_goal_replay, sample_rows


@struct.dataclass
class State:
    """Everything PEARL carries between iterations, replay buffers included."""

    actor_params: PyTree
    critic_params: PyTree
    value_params: PyTree
    target_value_params: PyTree
    encoder_params: PyTree
    actor_opt_state: optax.OptState
    critic_opt_state: optax.OptState
    """One optimiser state over {"critic", "encoder"}: the encoder learns from the critic's loss."""
    value_opt_state: optax.OptState
    replay: GoalReplay
    context_replay: GoalReplay
    iteration: Int[Array, ""]
    config: Config = struct.field(pytree_node=False)
    networks: Networks = struct.field(pytree_node=False)
    spec: EnvSpec = struct.field(pytree_node=False)


class Optimizers(NamedTuple):
    actor: optax.GradientTransformation
    critic: optax.GradientTransformation  # Adam at critic_lr on "critic", at encoder_lr on "encoder"
    value: optax.GradientTransformation


def make_optimizers(config: Config) -> Optimizers:
    """Rebuilt per trace from the static config (optax transforms compare by identity)."""

    def labels(params: dict[str, PyTree]) -> dict[str, PyTree]:
        return {name: jax.tree.map(lambda _, n=name: n, tree) for name, tree in params.items()}

    critic = optax.multi_transform(
        {"critic": optax.adam(config.critic_lr), "encoder": optax.adam(config.encoder_lr)}, labels
    )
    return Optimizers(optax.adam(config.actor_lr), critic, optax.adam(config.value_lr))


@functools.partial(jax.jit, static_argnames=("spec", "config"))
def _init(key: jax.Array, spec: EnvSpec, config: Config) -> State:
    networks = make_networks(spec, config)
    keys = jax.random.split(key, 4)
    obs, act = jnp.zeros((1, spec.obs_size)), jnp.zeros((1, spec.action_size))
    z = jnp.zeros((1, config.latent_size))
    blank = Transition(obs, act, jnp.zeros(1), obs, jnp.zeros(1), jnp.zeros(1, jnp.int32))
    features = context_features(blank, config.use_next_obs_in_context)
    actor = networks.actor.init(keys[0], jnp.concatenate([obs, z], -1))
    critic = networks.critic.init(keys[1], jnp.concatenate([obs, act, z], -1))
    value = networks.value.init(keys[2], jnp.concatenate([obs, z], -1))
    encoder = networks.encoder.init(keys[3], features)
    opt = make_optimizers(config)
    context_capacity = (config.prior_episodes + config.posterior_episodes) * spec.episode_length
    return State(
        actor_params=actor, critic_params=critic, value_params=value, target_value_params=value,
        encoder_params=encoder, actor_opt_state=opt.actor.init(actor),
        critic_opt_state=opt.critic.init({"critic": critic, "encoder": encoder}),
        value_opt_state=opt.value.init(value),
        replay=init_goal_replay(spec, config.replay_capacity_per_goal),
        context_replay=init_goal_replay(spec, context_capacity),
        iteration=jnp.zeros((), jnp.int32), config=config, networks=networks, spec=spec,
    )  # fmt: skip


def init(key: jax.Array, spec: EnvSpec, config: Config) -> State:
    """Fresh networks (target V = V), empty per-goal buffers, iteration 0."""
    if config.replay_capacity_per_goal < spec.episode_length:
        raise ValueError(
            f"replay_capacity_per_goal must be >= the episode length {spec.episode_length}, "
            f"got {config.replay_capacity_per_goal}"
        )
    return _init(key, spec, config)


def sample_goal_batches(
    state: State, key: jax.Array
) -> tuple[Int[Array, " g"], Transition, jax.Array, jax.Array]:
    """A meta-batch of filled goal slots (uniform, with replacement), each with an RL batch from its replay
    and a context batch from its context buffer. Returns (slots, RL rows [g·n] goal-major, context
    features [g, m, f], context mask [g, m])."""
    cfg = state.config
    slot_key, rl_key, ctx_key = jax.random.split(key, 3)
    filled = (state.replay.size > 0).astype(jnp.float32)
    slots = jax.random.choice(slot_key, filled.shape[0], (cfg.meta_batch_size,), p=filled / filled.sum())
    batch, _ = sample_rows(state.replay, slots, rl_key, cfg.batch_size)
    batch = jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), batch)
    context, mask = sample_rows(state.context_replay, slots, ctx_key, cfg.embedding_batch_size)
    return slots, batch, context_features(context, cfg.use_next_obs_in_context), mask


def update(state: State, key: jax.Array) -> tuple[State, dict[str, jax.Array]]:
    """One PEARL gradient step (Algorithm 1, inner loop): critic + encoder, V, actor, target V."""
    cfg, networks = state.config, state.networks
    opt = make_optimizers(cfg)
    batch_key, z_key, pi_key = jax.random.split(key, 3)
    _, batch, context, mask = sample_goal_batches(state, batch_key)
    critic_fn = functools.partial(
        critic_loss, networks=networks, config=cfg, target_value_params=state.target_value_params
    )
    critic = gradient_step(
        critic_fn, opt.critic, {"critic": state.critic_params, "encoder": state.encoder_params},
        state.critic_opt_state, batch, context, mask, z_key,
    )  # fmt: skip
    z = critic.aux.z
    value_fn = functools.partial(
        value_loss, networks=networks, config=cfg, actor_params=state.actor_params,
        critic_params=critic.params["critic"],
    )  # fmt: skip
    value = gradient_step(value_fn, opt.value, state.value_params, state.value_opt_state, batch, z, pi_key)
    actor_fn = functools.partial(
        actor_loss, networks=networks, config=cfg, critic_params=critic.params["critic"]
    )
    actor = gradient_step(actor_fn, opt.actor, state.actor_params, state.actor_opt_state, batch, z, pi_key)
    new_state = state.replace(
        actor_params=actor.params, critic_params=critic.params["critic"], value_params=value.params,
        target_value_params=optax.incremental_update(value.params, state.target_value_params, cfg.tau),
        encoder_params=critic.params["encoder"], actor_opt_state=actor.opt_state,
        critic_opt_state=critic.opt_state, value_opt_state=value.opt_state,
    )  # fmt: skip
    metrics = {
        "train/critic_loss": critic.loss,
        "train/value_loss": value.loss,
        "train/actor_loss": actor.loss,
        "train/kl": critic.aux.kl,
        "train/q_mean": critic.aux.q_mean,
        "train/z_var": critic.aux.z_var,
        "train/entropy": -jnp.mean(actor.aux),
    }
    return new_state, metrics

"""PEARL: off-policy meta-RL with a probabilistic context encoder and SAC on [obs, z].

Rakelly, Zhou, Quillen, Finn, Levine, "Efficient Off-Policy Meta-Reinforcement Learning via Probabilistic
Context Variables" (ICML 2019, arXiv:1903.08254), Algorithm 1 (meta-training) and Algorithm 2 (meta-test).

- Inference network (Sec. 4.1): an MLP maps each context transition c_n = (s, a, r[, s']) to a Gaussian
  factor Ψ(z|c_n) = N(μ_n, σ²_n); q(z|c) ∝ N(0, I) Π_n Ψ(z|c_n), closed form σ² = 1 / (1 + Σ 1/σ²_n),
  μ = σ² Σ μ_n/σ²_n. We include the unit prior as one more factor (PEARL's code, oyster and garage
  `product_of_gaussians`, multiplies the factors only): an empty or masked context then gives exactly the
  prior, so one function serves the collection's first episodes and masked batches.
- Objective (eq. 2 / Sec. 4.2): the encoder is trained by the critic's loss plus kl_lambda · KL(q(z|c) ‖ N(0,
  I)) (summed over the meta-batch, as garage does); the actor and value losses see z through stop-gradient.
- SAC (Haarnoja et al., ICML 2018, arXiv:1801.01290) as in PEARL's code: twin Q(s, a, z), a state-value
  network V(s, z) with a Polyak target V̄ (eqs. 5, 7), y = scale · r + γ (1 − done) V̄(s', z), a fixed entropy
  weight 1 with rewards multiplied by `reward_scale` (≡ α = 1/reward_scale), and garage's 1e-3 penalties on
  the policy's mean and log-std.
- Data (Algorithm 1): every iteration resets the envs (fresh goals); each env plays `prior_episodes` with z
  from the prior (a fresh draw per episode), then `posterior_episodes` and `extra_posterior_episodes` with z
  from q(z|c) of a context batch re-sampled before each episode from its goal's context buffer. Context
  buffers hold only the goal's latest prior (+ posterior) episodes (cleared when the goal comes back);
  RL buffers keep everything up to `replay_capacity_per_goal`. Both are per (task, goal) slot, so a
  meta-batch element's context and RL rows come from one goal.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct
from jaxtyping import Array, Bool, Float, Int

from mtrl.gradients import gradient_step
from mtrl.networks import MLP, StackedMLP
from mtrl.onpolicy import RolloutState, Trajectory, rollout
from mtrl.types import Env, EnvSpec, PyTree, TimeStep, Transition

from .sac.networks import sample_action

_SOURCE = "garage metaworld_examples/pearl_metaworld_ml10.py"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config:
    """Defaults: garage's PEARL Meta-World ML10 recipe (`pearl_metaworld_ml10.py`, PEARL class defaults in
    `garage/torch/algos/pearl.py`); its ML1 script differs in num_initial_steps 15000, meta_batch 16,
    40 steps per epoch. Episode counts are garage's step counts / 500 (Meta-World's episode length)."""

    latent_size: int = 7
    """Size of z (garage ML10/ML1: latent_size=7)."""
    hidden_sizes: tuple[int, ...] = (300, 300, 300)
    """Actor, twin Q and V hidden widths (garage: net_size=300, three layers)."""
    encoder_hidden_sizes: tuple[int, ...] = (200, 200, 200)
    """Context encoder hidden widths (garage: encoder_hidden_size=200, three layers)."""
    prior_episodes: int = 5
    """Episodes per goal and iteration with z ~ prior, stored in both buffers (num_steps_prior=2500)."""
    posterior_episodes: int = 0
    """Episodes with z ~ q(z|c) stored in both buffers (garage num_steps_posterior default 0)."""
    extra_posterior_episodes: int = 5
    """Episodes with z ~ q(z|c) for the RL buffer only (num_extra_rl_steps_posterior=2500)."""
    warmup_iterations: int = 1
    """First iterations that collect every episode with the prior (num_initial_steps=5000: 10 episodes)."""
    updates_per_iteration: int = 60
    """Gradient steps per iteration (garage num_steps_per_epoch: 60 on ML10, 40 on ML1)."""
    meta_batch_size: int = 10
    """Goals per gradient step (garage meta_batch_size: 10 on ML10, 16 on ML1)."""
    batch_size: int = 1000
    """RL transitions per goal in a gradient step (garage batch_size=1000)."""
    embedding_batch_size: int = 250
    """Context transitions per goal (garage embedding_batch_size=250)."""
    replay_capacity_per_goal: int = 5000
    """RL transitions kept per (task, goal) slot. garage keeps 1e6 (ML1: 5e6) per training goal but trains on
    only 10 (ML1: 15) fixed goals; we keep all 50 goals of every task, so 5000 (one visit of 10 episodes)
    keeps ML10 at ~0.85 GB (4 bytes × 85 floats × 500 slots × 5000)."""
    reward_scale: float = 1000.0
    """Multiplies rewards in the Q target; the entropy weight is 1 (garage reward_scale=1000)."""
    kl_lambda: float = 0.1
    """Weight of KL(q(z|c) ‖ N(0, I)) in the encoder's loss (garage/PEARL kl_lambda=0.1)."""
    actor_lr: float = 3e-4
    """Adam rate of the policy (garage policy_lr=3e-4)."""
    critic_lr: float = 3e-4
    """Adam rate of the twin Q-functions (qf_lr=3e-4)."""
    value_lr: float = 3e-4
    """Adam rate of V (vf_lr=3e-4)."""
    encoder_lr: float = 3e-4
    """Adam rate of the context encoder (context_lr=3e-4)."""
    gamma: float = 0.99
    """Discount (garage discount=0.99)."""
    tau: float = 0.005
    """Polyak rate of the target V (soft_target_tau=0.005)."""
    policy_mean_reg: float = 1e-3
    """Penalty on the squared pre-tanh mean (policy_mean_reg_coeff=1e-3)."""
    policy_std_reg: float = 1e-3
    """Penalty on the squared log-std (policy_std_reg_coeff=1e-3)."""
    log_std_min: float = -20.0
    """Log-std clamp (garage TanhGaussianMLPPolicy min_std=exp(-20))."""
    log_std_max: float = 2.0
    """Log-std clamp (max_std=exp(2))."""
    use_next_obs_in_context: bool = False
    """Context transitions include s' (garage use_next_obs_in_context=False)."""
    min_factor_var: float = 1e-7
    """Floor of each factor's variance σ²_n (garage product_of_gaussians clamps at 1e-7)."""

    def __post_init__(self) -> None:
        for name in ("hidden_sizes", "encoder_hidden_sizes"):
            sizes = tuple(getattr(self, name))
            object.__setattr__(self, name, sizes)  # lists would make the static config unhashable
            if not sizes or min(sizes) < 1:
                raise ValueError(f"{name} must be non-empty positive widths, got {sizes}")
        for name, low in (
            ("latent_size", 1), ("prior_episodes", 1), ("posterior_episodes", 0),
            ("extra_posterior_episodes", 0), ("warmup_iterations", 0), ("updates_per_iteration", 1),
            ("meta_batch_size", 1), ("batch_size", 1), ("embedding_batch_size", 1),
            ("replay_capacity_per_goal", 1),
        ):  # fmt: skip
            value = getattr(self, name)
            if not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
        for name in ("reward_scale", "actor_lr", "critic_lr", "value_lr", "encoder_lr", "min_factor_var"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("kl_lambda", "policy_mean_reg", "policy_std_reg"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.gamma <= 1:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma}")
        if not 0 < self.tau <= 1:
            raise ValueError(f"tau must be in (0, 1], got {self.tau}")
        if self.log_std_min >= self.log_std_max:
            raise ValueError(
                f"log_std_min ({self.log_std_min}) must be below log_std_max ({self.log_std_max})"
            )


def episodes_per_goal(config: Config) -> int:
    """The training env keeps a goal for the whole iteration: prior, posterior and extra episodes."""
    return config.prior_episodes + config.posterior_episodes + config.extra_posterior_episodes


def vector_steps_per_iteration(spec: EnvSpec, config: Config) -> int:
    return episodes_per_goal(config) * spec.episode_length


# --- networks and the posterior ---------------------------------------------------------------------------


class Networks(NamedTuple):
    actor: nn.Module  # [obs, z] -> (mean, log-std) of the pre-tanh Gaussian
    critic: nn.Module  # [obs, action, z] -> twin Q, [rows, 2, 1]
    value: nn.Module  # [obs, z] -> V
    encoder: nn.Module  # context transition -> (μ_n, raw σ²_n)


def make_networks(spec: EnvSpec, config: Config) -> Networks:
    return Networks(
        actor=MLP((*config.hidden_sizes, 2 * spec.action_size)),
        critic=StackedMLP(2, (*config.hidden_sizes, 1)),
        value=MLP((*config.hidden_sizes, 1)),
        encoder=MLP((*config.encoder_hidden_sizes, 2 * config.latent_size)),
    )


def context_features(tr: Transition, use_next_obs: bool) -> Float[Array, "... features"]:
    """c_n = (s, a, r[, s']) with the raw (unscaled) reward, as PEARL's code feeds its encoder."""
    parts = [tr.obs, tr.action, tr.reward[..., None]] + ([tr.next_obs] if use_next_obs else [])
    return jnp.concatenate(parts, axis=-1)


def product_of_gaussians(
    mu: Float[Array, "*b n latent"], var: Float[Array, "*b n latent"], mask: Float[Array, "*b n"]
) -> tuple[Float[Array, "*b latent"], Float[Array, "*b latent"]]:
    """N(0, I) Π_n N(μ_n, σ²_n)^{m_n}, normalised: σ² = 1 / (1 + Σ m_n/σ²_n), μ = σ² Σ m_n μ_n/σ²_n."""
    precision = mask[..., None] / var
    posterior_var = 1.0 / (1.0 + precision.sum(-2))
    return posterior_var * (precision * mu).sum(-2), posterior_var


def posterior(
    networks: Networks, encoder_params: PyTree, features: Float[Array, "*b n f"], mask: Float[Array, "*b n"],
    config: Config,
) -> tuple[Float[Array, "*b latent"], Float[Array, "*b latent"]]:  # fmt: skip
    """q(z|c): each transition's factor from the encoder (σ²_n = softplus, floored), then their product."""
    out = networks.encoder.apply(encoder_params, features)
    mu, raw = jnp.split(out, 2, axis=-1)
    return product_of_gaussians(mu, jnp.maximum(jax.nn.softplus(raw), config.min_factor_var), mask)


def kl_to_prior(mean: Float[Array, "*b latent"], var: Float[Array, "*b latent"]) -> Float[Array, "*b"]:
    """KL(N(μ, diag σ²) ‖ N(0, I)) = ½ Σ (σ² + μ² − 1 − log σ²)."""
    return 0.5 * jnp.sum(var + mean**2 - 1.0 - jnp.log(var), axis=-1)


def sample_latent(mean: jax.Array, var: jax.Array, key: jax.Array) -> jax.Array:
    """Reparameterised z = μ + σ ε."""
    return mean + jnp.sqrt(var) * jax.random.normal(key, mean.shape, mean.dtype)


def policy(networks: Networks, actor_params: PyTree, obs: jax.Array, z: jax.Array, config: Config):
    out = networks.actor.apply(actor_params, jnp.concatenate([obs, z], axis=-1))
    mean, log_std = jnp.split(out, 2, axis=-1)
    return mean, jnp.clip(log_std, config.log_std_min, config.log_std_max)


def q_values(networks: Networks, critic_params: PyTree, obs, action, z) -> Float[Array, "2 rows"]:
    return networks.critic.apply(critic_params, jnp.concatenate([obs, action, z], axis=-1))[..., 0].T


def state_value(networks: Networks, value_params: PyTree, obs, z) -> Float[Array, " rows"]:
    return networks.value.apply(value_params, jnp.concatenate([obs, z], axis=-1))[..., 0]


# --- per-goal replay --------------------------------------------------------------------------------------


@struct.dataclass
class GoalReplay:
    """Ring buffers per (task, goal) slot, slot = task · goals_per_task + goal: `data.x[slot, row, ...]`."""

    data: Transition
    insert_at: Int[Array, " slots"]
    size: Int[Array, " slots"]


def init_goal_replay(spec: EnvSpec, capacity: int) -> GoalReplay:
    s, c = spec.num_tasks * spec.goals_per_task, capacity
    data = Transition(
        obs=jnp.zeros((s, c, spec.obs_size), jnp.float32),
        action=jnp.zeros((s, c, spec.action_size), jnp.float32),
        reward=jnp.zeros((s, c), jnp.float32),
        next_obs=jnp.zeros((s, c, spec.obs_size), jnp.float32),
        terminated=jnp.zeros((s, c), jnp.float32),
        task_id=jnp.broadcast_to((jnp.arange(s, dtype=jnp.int32) // spec.goals_per_task)[:, None], (s, c)),
    )
    return GoalReplay(data, jnp.zeros(s, jnp.int32), jnp.zeros(s, jnp.int32))


def clear_slots(replay: GoalReplay, slots: Int[Array, " envs"]) -> GoalReplay:
    return replay.replace(insert_at=replay.insert_at.at[slots].set(0), size=replay.size.at[slots].set(0))


def add_episodes(replay: GoalReplay, slots: Int[Array, " envs"], episodes: Transition) -> GoalReplay:
    """Write each env's `[envs, T]` rows into its slot. Envs sharing a slot write one after the other
    (rank among earlier envs with that slot), so none overwrites another within one call."""
    num_slots, capacity = replay.size.shape[0], replay.data.reward.shape[1]
    length = episodes.reward.shape[1]
    same = slots[:, None] == slots[None, :]
    rank = jnp.sum(jnp.tril(same, k=-1), axis=1)
    rows = (replay.insert_at[slots] + rank * length)[:, None] + jnp.arange(length)
    rows = rows % capacity
    data = jax.tree.map(
        lambda buf, x: buf.at[slots[:, None], rows].set(x.astype(buf.dtype)), replay.data, episodes
    )
    count = jax.ops.segment_sum(jnp.full_like(slots, length), slots, num_segments=num_slots)
    return GoalReplay(data, (replay.insert_at + count) % capacity, jnp.minimum(replay.size + count, capacity))


def sample_rows(replay: GoalReplay, slots: Int[Array, " g"], key: jax.Array, n: int):
    """`n` uniform rows of each slot's filled part: `[g, n]` transitions, and a mask (0 for empty slots)."""
    size = replay.size[slots]
    rows = jax.random.randint(key, (slots.shape[0], n), 0, jnp.maximum(size, 1)[:, None])
    batch = jax.tree.map(lambda buf: buf[slots[:, None], rows], replay.data)
    return batch, jnp.broadcast_to((size > 0)[:, None], rows.shape).astype(jnp.float32)


# --- state ------------------------------------------------------------------------------------------------


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


# --- losses (one gradient step: critic + encoder, value, actor) -------------------------------------------


class CriticAux(NamedTuple):
    z: Float[Array, "g latent"]
    kl: Float[Array, ""]
    q_mean: Float[Array, ""]
    z_var: Float[Array, ""]


def _rows(z: jax.Array, n: int) -> jax.Array:
    """Each goal's z repeated for its n rows, flattened like the batch: [g·n, latent]."""
    return jnp.repeat(z, n, axis=0)


def critic_loss(
    trainable: dict[str, PyTree], batch: Transition, context: jax.Array, mask: jax.Array, key: jax.Array, *,
    networks: Networks, config: Config, target_value_params: PyTree,
) -> tuple[Float[Array, ""], CriticAux]:  # fmt: skip
    """Σ_i E[(Q_i(s, a, z) − y)²] + kl_lambda Σ_goals KL(q(z|c) ‖ N(0, I)), z ~ q(z|c) reparameterised.

    y = reward_scale · r + γ (1 − terminated) V̄(s', z), held fixed. The gradient reaches the encoder through
    z in Q and through the KL term (PEARL's L_critic + β L_KL). Batch rows are `[g · n]`, goal-major.
    """
    mean, var = posterior(networks, trainable["encoder"], context, mask, config)
    z = sample_latent(mean, var, key)
    zr = _rows(z, batch.reward.shape[0] // z.shape[0])
    next_v = state_value(networks, target_value_params, batch.next_obs, zr)
    target = config.reward_scale * batch.reward + (1.0 - batch.terminated) * config.gamma * next_v
    target = jax.lax.stop_gradient(target)
    q = q_values(networks, trainable["critic"], batch.obs, batch.action, zr)
    kl = jnp.sum(kl_to_prior(mean, var))
    loss = jnp.sum(jnp.mean((q - target) ** 2, axis=-1)) + config.kl_lambda * kl
    return loss, CriticAux(jax.lax.stop_gradient(z), kl, q.mean(), var.mean())


def value_loss(
    value_params: PyTree, batch: Transition, z: jax.Array, key: jax.Array, *, networks: Networks,
    config: Config, actor_params: PyTree, critic_params: PyTree,
) -> tuple[Float[Array, ""], tuple[()]]:  # fmt: skip
    """E[(V(s, z) − (min_i Q_i(s, ã, z) − log π(ã|s, z)))²], ã ~ π(·|s, z); z held fixed (PEARL's code)."""
    zr = jax.lax.stop_gradient(_rows(z, batch.reward.shape[0] // z.shape[0]))
    mean, log_std = policy(networks, actor_params, batch.obs, zr, config)
    action, log_prob = sample_action(mean, log_std, key)
    target = jax.lax.stop_gradient(q_values(networks, critic_params, batch.obs, action, zr).min(0) - log_prob)
    return jnp.mean((state_value(networks, value_params, batch.obs, zr) - target) ** 2), ()


def actor_loss(
    actor_params: PyTree, batch: Transition, z: jax.Array, key: jax.Array, *, networks: Networks,
    config: Config, critic_params: PyTree,
) -> tuple[Float[Array, ""], Float[Array, " rows"]]:  # fmt: skip
    """E[log π(ã|s, z) − min_i Q_i(s, ã, z)] + mean/log-std penalties; z is held fixed, so the encoder gets
    no gradient from the actor (PEARL detaches z for the policy)."""
    zr = jax.lax.stop_gradient(_rows(z, batch.reward.shape[0] // z.shape[0]))
    mean, log_std = policy(networks, actor_params, batch.obs, zr, config)
    action, log_prob = sample_action(mean, log_std, key)
    q = q_values(networks, critic_params, batch.obs, action, zr).min(0)
    reg = config.policy_mean_reg * jnp.mean(mean**2) + config.policy_std_reg * jnp.mean(log_std**2)
    return jnp.mean(log_prob - q) + reg, log_prob


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


# --- data collection and the training iteration -----------------------------------------------------------


class CollectCarry(NamedTuple):
    rollout: RolloutState
    replay: GoalReplay
    context_replay: GoalReplay
    key: jax.Array


def _act(networks: Networks, config: Config, params, obs, task_id, key):
    """Behaviour policy for `mtrl.onpolicy.rollout`: params = (actor params, z [envs, latent])."""
    actor_params, z = params
    mean, log_std = policy(networks, actor_params, obs, z, config)
    return sample_action(mean, log_std, key)


def collect_episode(
    env: Env, state: State, slots: Int[Array, " envs"], to_context: bool, carry: CollectCarry,
    use_posterior: Bool[Array, ""],
) -> tuple[CollectCarry, Trajectory]:  # fmt: skip
    """One episode per env with z from the prior or from q(z|c) of a fresh context batch of its goal."""
    cfg = state.config
    key, ctx_key, z_key, roll_key = jax.random.split(carry.key, 4)
    context, mask = sample_rows(carry.context_replay, slots, ctx_key, cfg.embedding_batch_size)
    features = context_features(context, cfg.use_next_obs_in_context)
    mean, var = posterior(state.networks, state.encoder_params, features, mask * use_posterior, cfg)
    z = sample_latent(mean, var, z_key)  # with the mask off this is the prior N(0, I)
    policy_fn = functools.partial(_act, state.networks, cfg)
    start = carry.rollout._replace(key=roll_key)
    rolled, traj = rollout(env, policy_fn, (state.actor_params, z), start, env.spec.episode_length)
    episodes = Transition(
        *(jnp.swapaxes(x, 0, 1) for x in (traj.obs, traj.action, traj.reward, traj.next_obs)),
        terminated=jnp.swapaxes(traj.terminated, 0, 1).astype(jnp.float32),
        task_id=jnp.swapaxes(traj.task_id, 0, 1),
    )
    replay = add_episodes(carry.replay, slots, episodes)
    context_replay = (
        add_episodes(carry.context_replay, slots, episodes) if to_context else carry.context_replay
    )
    return CollectCarry(rolled, replay, context_replay, key), traj


def train_iteration(env: Env, state: State, key: jax.Array) -> tuple[State, dict[str, jax.Array]]:
    """Algorithm 1, one iteration: reset (fresh goals), collect prior / posterior episodes per goal in
    lockstep, then `updates_per_iteration` gradient steps on meta-batches of goals."""
    cfg, spec = state.config, env.spec
    reset_key, rollout_key, collect_key, update_key = jax.random.split(key, 4)
    env_state, timestep = env.reset(reset_key)
    slots = timestep.task_id * spec.goals_per_task + env_state.goal_index
    past_warmup = state.iteration >= cfg.warmup_iterations  # before that, every episode uses the prior
    carry = CollectCarry(
        RolloutState(env_state, timestep, rollout_key), state.replay,
        clear_slots(state.context_replay, slots), collect_key,
    )  # fmt: skip
    phases = (  # (episodes, z from the posterior?, stored in the context buffer?)
        (cfg.prior_episodes, False, True),
        (cfg.posterior_episodes, True, True),
        (cfg.extra_posterior_episodes, True, False),
    )
    trajs = {}
    for name, (count, from_posterior, to_context) in zip(
        ("prior", "posterior", "extra"), phases, strict=True
    ):
        if count:
            body = functools.partial(collect_episode, env, state, slots, to_context)
            use = jnp.full((count,), from_posterior) & past_warmup
            carry, trajs[name] = jax.lax.scan(body, carry, use)
    state = state.replace(replay=carry.replay, context_replay=carry.context_replay)
    state, metrics = jax.lax.scan(update, state, jax.random.split(update_key, cfg.updates_per_iteration))
    metrics = jax.tree.map(jnp.mean, metrics)
    success = {k: t.success.any(axis=1) for k, t in trajs.items()}  # [episodes, envs]
    returns = {k: t.reward.sum(axis=1) for k, t in trajs.items()}
    metrics["train/success"] = jnp.concatenate(list(success.values())).astype(jnp.float32).mean()
    metrics["train/episode_return"] = jnp.concatenate(list(returns.values())).mean()
    metrics["train/success_prior"] = success["prior"].astype(jnp.float32).mean()
    post = [success[k] for k in ("posterior", "extra") if k in success]
    if post:
        metrics["train/success_posterior"] = jnp.concatenate(post).astype(jnp.float32).mean()
    return state.replace(iteration=state.iteration + 1), metrics


# --- meta-test (Algorithm 2) ------------------------------------------------------------------------------


@struct.dataclass
class Context:
    """Each env's belief q(z) and the z it acts with."""

    mean: Float[Array, "envs latent"]
    var: Float[Array, "envs latent"]
    z: Float[Array, "envs latent"]


def init_adaptation(state: State, spec: EnvSpec, key: jax.Array) -> Context:
    """The prior N(0, I) for every env, and a first z drawn from it."""
    shape = (spec.num_envs, state.config.latent_size)
    mean, var = jnp.zeros(shape), jnp.ones(shape)
    return Context(mean, var, sample_latent(mean, var, key))


def act(
    state: State, context: Context, step: TimeStep, key: jax.Array, deterministic: bool
) -> tuple[jax.Array, Context]:
    """Exploring: a sampled action with the context's z, and a fresh z from the current belief at every
    episode start (PEARL's worker samples z per rollout). Before `adapt` the belief is the prior, so the
    adaptation episodes are collected as the encoder's training context was (prior episodes; the posterior is
    not updated online). Deterministic: tanh of the mean action with z = the belief's mean."""
    z_key, action_key = jax.random.split(key)
    if deterministic:
        mean, _ = policy(state.networks, state.actor_params, step.obs, context.mean, state.config)
        return jnp.tanh(mean), context
    started = (step.truncated | step.terminated)[:, None]
    z = jnp.where(started, sample_latent(context.mean, context.var, z_key), context.z)
    mean, log_std = policy(state.networks, state.actor_params, step.obs, z, state.config)
    action, _ = sample_action(mean, log_std, action_key)
    return action, context.replace(z=z)


def adapt(state: State, context: Context, episodes: Transition, key: jax.Array) -> Context:
    """q(z|c) from every transition of the N adaptation episodes (`[envs, N, T]`), and z drawn from it."""
    cfg = state.config
    features = context_features(episodes, cfg.use_next_obs_in_context)
    features = features.reshape(features.shape[0], -1, features.shape[-1])
    mean, var = posterior(state.networks, state.encoder_params, features, jnp.ones(features.shape[:2]), cfg)
    return Context(mean, var, sample_latent(mean, var, key))

"""MT-PPO: one PPO agent shared by all tasks, the Meta-World paper's multi-task PPO baseline.

Yu et al., "Meta-World: A Benchmark and Evaluation for Multi-Task and Meta Reinforcement Learning" (CoRL 2019,
arXiv:1910.10897) train one Gaussian MLP policy and one MLP value function on the observation, which on MT
benchmarks ends with the one-hot task id, with PPO (Schulman et al., "Proximal Policy Optimization
Algorithms", 2017, arXiv:1707.06347): the clipped surrogate of eq. 7 on GAE advantages (Schulman et al.,
ICLR 2016, arXiv:1506.02438, eq. 16), several epochs of minibatch Adam over every sample of an iteration.
The recipe is garage's `mtppo_metaworld_mt10.py` example and its torch `PPO` defaults, cited per field.

One `train_iteration` is PPO's algorithm box: run the policy for whole episodes in every env, estimate
advantages Â_1..Â_T, then optimise the surrogate for K epochs with minibatches of size M.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct
from jaxtyping import Array, Float, Int

from mtrl import onpolicy
from mtrl.gradients import gradient_step
from mtrl.types import Env, EnvSpec, PyTree

from . import policy_gradient as pg
from .gradient_methods.core import check_positive


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config:
    """MT-PPO on MT10 as garage runs it (the Meta-World paper's implementation)."""

    policy_hidden_sizes: tuple[int, ...] = (64, 64)
    """Tanh hidden widths of the Gaussian policy (garage mtppo_metaworld_mt10: GaussianMLPPolicy (64, 64))."""
    value_hidden_sizes: tuple[int, ...] = (32, 32)
    """Tanh hidden widths of the value function (garage mtppo_metaworld_mt10: GaussianMLPValueFunction
    (32, 32); we regress its mean only, by squared error, where garage maximises a Gaussian likelihood)."""
    init_std: float = 1.0
    """Initial standard deviation of the learned state-independent action noise (garage GaussianMLPPolicy)."""
    policy_lr: float = 2.5e-4
    """Adam learning rate of the policy (garage torch PPO's default optimizer); 0 freezes it."""
    value_lr: float = 2.5e-4
    """Adam learning rate of the value function (garage torch PPO's default optimizer); 0 freezes it."""
    gamma: float = 0.99
    """Discount factor (garage mtppo_metaworld_mt10: discount=0.99)."""
    gae_lambda: float = 0.95
    """GAE λ (garage mtppo_metaworld_mt10: gae_lambda=0.95; PPO paper, Table 3: 0.95)."""
    clip_eps: float = 0.2
    """Clip range ε of eq. 7 (garage mtppo_metaworld_mt10: lr_clip_range=0.2; PPO paper: 0.2)."""
    epochs: int = 10
    """Passes K over the iteration's samples (garage torch PPO: max_optimization_epochs=10; PPO paper: 10)."""
    minibatch_size: int = 64
    """Samples M per Adam step (garage torch PPO: minibatch_size=64; PPO paper MuJoCo: 64). The last
    minibatch of an epoch holds the remainder, so every sample is used once per epoch."""
    entropy_coef: float = 0.0
    """Entropy bonus c₂ of eq. 9 (garage PPO: policy_ent_coeff=0, entropy_method='no_entropy';
    PPO paper MuJoCo: none)."""
    normalize_advantages: bool = True
    """Standardise the advantages over the iteration's samples (garage: center_adv=True). garage divides
    by the variance; we divide by the standard deviation, as PPO's reference implementation does."""
    episodes_per_iteration: int = 1
    """Whole episodes every env plays per iteration. garage's MT10 example collects batch_size=1024 env
    steps, less than one 500-step episode per task; one episode per env is the nearest whole-episode
    batch that visits every task (MT10: 10 × 500 = 5,000 samples)."""

    def __post_init__(self) -> None:
        # A list (from JSON, say) would make the config, a static pytree field, unhashable.
        object.__setattr__(self, "policy_hidden_sizes", tuple(self.policy_hidden_sizes))
        object.__setattr__(self, "value_hidden_sizes", tuple(self.value_hidden_sizes))
        for name in ("policy_hidden_sizes", "value_hidden_sizes"):
            sizes = getattr(self, name)
            if not sizes or min(sizes) < 1:
                raise ValueError(f"{name} must be non-empty positive widths, got {sizes}")
        check_positive("init_std", self.init_std)
        check_positive("policy_lr", self.policy_lr, allow_zero=True)
        check_positive("value_lr", self.value_lr, allow_zero=True)
        check_positive("entropy_coef", self.entropy_coef, allow_zero=True)
        check_positive("clip_eps", self.clip_eps)
        for name in ("gamma", "gae_lambda"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        for name in ("epochs", "minibatch_size", "episodes_per_iteration"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


@struct.dataclass
class State:
    """Policy and value parameters with their Adam states, and the iteration count."""

    policy_params: PyTree
    value_params: PyTree
    policy_opt_state: optax.OptState
    value_opt_state: optax.OptState
    iteration: Int[Array, ""]
    config: Config = struct.field(pytree_node=False)
    policy: pg.GaussianPolicy = struct.field(pytree_node=False)
    value: pg.ValueNetwork = struct.field(pytree_node=False)
    action_low: float = struct.field(pytree_node=False)
    action_high: float = struct.field(pytree_node=False)


class Optimizers(NamedTuple):
    """Adam for policy and value function, rebuilt from the static config at every trace (optax
    transforms compare by identity, so storing them would make equal states look different)."""

    policy: optax.GradientTransformation
    value: optax.GradientTransformation


def make_optimizers(config: Config) -> Optimizers:
    return Optimizers(policy=optax.adam(config.policy_lr), value=optax.adam(config.value_lr))


def init(key: jax.Array, spec: EnvSpec, config: Config) -> State:
    """A fresh MT-PPO agent for the env described by `spec`."""
    policy = pg.GaussianPolicy(config.policy_hidden_sizes, spec.action_size, config.init_std)
    value = pg.ValueNetwork(config.value_hidden_sizes)
    policy_key, value_key = jax.random.split(key)
    dummy = jnp.zeros((1, spec.obs_size), jnp.float32)
    policy_params = policy.init(policy_key, dummy)
    value_params = value.init(value_key, dummy)
    optimizers = make_optimizers(config)
    return State(
        policy_params=policy_params,
        value_params=value_params,
        policy_opt_state=optimizers.policy.init(policy_params),
        value_opt_state=optimizers.value.init(value_params),
        iteration=jnp.zeros((), jnp.int32),
        config=config,
        policy=policy,
        value=value,
        action_low=spec.action_low,
        action_high=spec.action_high,
    )


def episodes_per_goal(config: Config) -> int:
    """MT training resamples a goal at every reset: one episode per goal."""
    del config
    return 1


def vector_steps_per_iteration(spec: EnvSpec, config: Config) -> int:
    """`env.step` calls per `train_iteration`: whole episodes, all envs in lockstep."""
    return config.episodes_per_iteration * spec.episode_length


def act(
    state: State,
    obs: Float[Array, "envs obs"],
    task_id: Int[Array, " envs"],
    key: jax.Array,
    deterministic: bool,
) -> Float[Array, "envs act"]:
    """The mean action clipped to the action bounds (evaluation), or a Gaussian sample (exploration)."""
    del task_id  # the task enters through the one-hot id at the end of the observation
    mean, log_std = state.policy.apply(state.policy_params, obs)
    if deterministic:
        return jnp.clip(mean, state.action_low, state.action_high)
    return pg.sample_gaussian(mean, log_std, key)[0]


def sample_policy(
    policy: pg.GaussianPolicy, params: PyTree, obs: jax.Array, task_id: jax.Array, key: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """The `onpolicy.PolicyFn` of collection: an unclipped sample and its log-density (the env clips)."""
    del task_id
    return pg.sample_gaussian(*policy.apply(params, obs), key)


# --- advantages ------------------------------------------------------------------------------------------


class Samples(NamedTuple):
    """The iteration's flat samples: the surrogate's inputs and the value function's regression target."""

    policy: pg.PolicyBatch
    value_target: Float[Array, " batch"]


def estimate_advantages(
    state: State, traj: onpolicy.Trajectory
) -> tuple[Float[Array, "steps envs"], Float[Array, "steps envs"]]:
    """GAE advantages and value targets of a time-major trajectory, both `[episodes * time, envs]`.

    V(s'_t) is the value of the true next state (`next_obs`), so a truncated episode bootstraps from the
    state it was cut at (Pardo et al., ICML 2018, arXiv:1712.00378). The value target is the λ-return
    Â_t + V(s_t); garage regresses on the unbootstrapped discounted return instead.
    """
    flat = jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), traj)  # episodes line up: flat time
    values = state.value.apply(state.value_params, flat.obs)
    next_values = state.value.apply(state.value_params, flat.next_obs)
    config = state.config
    advantages = onpolicy.gae(
        flat.reward,
        values,
        next_values,
        flat.terminated,
        flat.truncated,
        gamma=config.gamma,
        lam=config.gae_lambda,
    )
    return advantages, advantages + values


def make_samples(state: State, traj: onpolicy.Trajectory) -> Samples:
    """Flatten the trajectory to samples, with (optionally standardised) advantages."""
    advantages, targets = estimate_advantages(state, traj)
    advantages = advantages.reshape(-1)
    if state.config.normalize_advantages:
        advantages = onpolicy.normalize(advantages)
    obs = traj.obs.reshape(-1, traj.obs.shape[-1])
    action = traj.action.reshape(-1, traj.action.shape[-1])
    batch = pg.PolicyBatch(
        obs=obs, action=action, advantage=advantages, old_log_prob=traj.log_prob.reshape(-1)
    )
    return Samples(policy=batch, value_target=targets.reshape(-1))


# --- the update ------------------------------------------------------------------------------------------


def epoch_minibatches(
    key: jax.Array, num_samples: int, minibatch_size: int
) -> tuple[Int[Array, "full size"], Int[Array, " rest"]]:
    """One epoch's minibatches: a random permutation cut into full minibatches and the remainder.

    Shapes are static (`num_samples // size` full rows, `num_samples % size` left over), so the epoch
    scans over the full ones and takes one more step on the rest: every sample once per epoch.
    """
    size = min(minibatch_size, num_samples)
    order = jax.random.permutation(key, num_samples)
    num_full = num_samples // size
    return order[: num_full * size].reshape(num_full, size), order[num_full * size :]


def policy_loss(params: PyTree, batch: pg.PolicyBatch, *, state: State) -> tuple[Float[Array, ""], pg.PPOAux]:
    """PPO's clipped surrogate with entropy bonus (eq. 7 and 9), negated, for the state's policy."""
    config = state.config
    return pg.ppo_loss(
        params,
        batch,
        dist_fn=state.policy.apply,
        clip_eps=config.clip_eps,
        entropy_coef=config.entropy_coef,
    )


class Learner(NamedTuple):
    """The scan carry of the epochs: what the minibatch steps change."""

    policy_params: PyTree
    value_params: PyTree
    policy_opt_state: optax.OptState
    value_opt_state: optax.OptState


def minibatch_step(
    state: State, samples: Samples, learner: Learner, indices: Int[Array, " size"]
) -> tuple[Learner, dict[str, jax.Array]]:
    """One Adam step of the policy on the surrogate and one of the value function, on the same rows."""
    optimizers = make_optimizers(state.config)
    batch = jax.tree.map(lambda x: x[indices], samples)
    policy_step = gradient_step(
        functools.partial(policy_loss, state=state),
        optimizers.policy,
        learner.policy_params,
        learner.policy_opt_state,
        batch.policy,
    )
    value_step = gradient_step(
        functools.partial(pg.value_loss, network=state.value),
        optimizers.value,
        learner.value_params,
        learner.value_opt_state,
        batch.policy.obs,
        batch.value_target,
    )
    metrics = {
        "train/policy_loss": policy_step.loss,
        "train/value_loss": value_step.loss,
        "train/entropy": policy_step.aux.entropy,
        "train/approx_kl": policy_step.aux.approx_kl,
        "train/clip_fraction": policy_step.aux.clip_fraction,
        "train/policy_grad_norm": policy_step.grad_norm,
        "train/value_grad_norm": value_step.grad_norm,
    }
    learner = Learner(policy_step.params, value_step.params, policy_step.opt_state, value_step.opt_state)
    return learner, metrics


def epoch(
    state: State, samples: Samples, learner: Learner, key: jax.Array
) -> tuple[Learner, dict[str, jax.Array]]:
    """One pass over all samples in random minibatches; metrics are the mean over its steps."""
    num_samples = samples.value_target.shape[0]
    full, rest = epoch_minibatches(key, num_samples, state.config.minibatch_size)
    step = functools.partial(minibatch_step, state, samples)
    learner, metrics = jax.lax.scan(step, learner, full)
    if rest.shape[0]:
        learner, last = step(learner, rest)
        metrics = jax.tree.map(lambda m, x: jnp.concatenate([m, x[None]]), metrics, last)
    return learner, jax.tree.map(jnp.mean, metrics)


def train_iteration(env: Env, state: State, key: jax.Array) -> tuple[State, dict[str, jax.Array]]:
    """Collect whole episodes in every env, estimate GAE advantages, run K epochs of minibatch PPO."""
    config = state.config
    collect_key, epochs_key = jax.random.split(key)
    traj = onpolicy.collect_episodes(
        env,
        functools.partial(sample_policy, state.policy),
        state.policy_params,
        collect_key,
        config.episodes_per_iteration,
    )
    samples = make_samples(state, traj)

    learner = Learner(state.policy_params, state.value_params, state.policy_opt_state, state.value_opt_state)
    learner, metrics = jax.lax.scan(
        functools.partial(epoch, state, samples), learner, jax.random.split(epochs_key, config.epochs)
    )
    metrics = jax.tree.map(jnp.mean, metrics)
    metrics["train/success"] = jnp.mean(jnp.any(traj.success, axis=1).astype(jnp.float32))
    metrics["train/episode_return"] = jnp.mean(jnp.sum(traj.reward, axis=1))
    metrics["train/action_std"] = jnp.mean(jnp.exp(state.policy_params["params"]["log_std"]))
    state = state.replace(
        policy_params=learner.policy_params,
        value_params=learner.value_params,
        policy_opt_state=learner.policy_opt_state,
        value_opt_state=learner.value_opt_state,
        iteration=state.iteration + 1,
    )
    return state, metrics

"""RL²: a recurrent policy whose hidden state is the fast learner, trained by PPO over whole trials.

Duan et al., "RL²: Fast Reinforcement Learning via Slow Reinforcement Learning" (2016, arXiv:1611.02779),
as in the Meta-World baselines (garage's `RL2PPO`, example `rl2_ppo_metaworld_ml10.py`):

1. Trials. Each env plays one goal for a trial of `episodes_per_trial` consecutive episodes
   (`episodes_per_goal` below). A GRU Gaussian policy reads, at every step, [obs, previous action,
   previous reward, previous done] (paper §2.2; zeros at a trial's first step). Its hidden state is kept
   across the episode boundaries inside a trial, so what it learnt about the goal in episode k steers
   episode k+1, and is reset to zeros only where a trial ends.
2. Advantages. As garage does, a trial is one long episode for the return: the discount and GAE run
   across its inner episode boundaries (a reward in episode k+1 credits exploration in episode k), and the
   trial's end is a termination (no bootstrap). garage's "max" entropy method adds the policy's
   negative log-likelihood, times `entropy_coef`, to every reward (no gradient through it).
3. Baseline: garage's linear feature baseline on the augmented observation, time = step within the
   trial, fitted to the trial's discounted returns on the iteration's own data before the update.
4. PPO's clipped surrogate (Schulman et al., 2017, arXiv:1707.06347, eq. 7), log-probabilities
   re-evaluated by re-running the GRU from zeros over each stored trial; minibatches are whole trials.

Meta-test: `init_adaptation` zeros the hidden state, `act` feeds the `TimeStep`'s reward and done back
in, `adapt` is the identity: the adaptation lives in the hidden state, which carries on into the
scored episodes. Episodes must all run `spec.episode_length` steps (Meta-World and toy envs never
terminate early), so a trial is a fixed `episodes_per_trial * episode_length` block.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct
from jaxtyping import Array, Bool, Float, Int

from mtrl.gradients import gradient_step
from mtrl.meta_evaluation import goal_schedule
from mtrl.onpolicy import discounted_returns, gae, normalize
from mtrl.types import Env, EnvSpec, PyTree, TimeStep, Transition

from . import policy_gradient as pg


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config:
    """RL²-PPO. Defaults: garage's `rl2_ppo_metaworld_ml10.py` (rlworkgroup/garage, commit 08272cf)
    unless a field says otherwise; the meta-batch is the env count (garage: 10 tasks)."""

    hidden_size: int = 256
    """GRU width (garage GaussianGRUPolicy hidden_dim=256; its earlier ML10 example, commit 7ecab12: 64)."""
    episodes_per_trial: int = 10
    """Episodes per trial, all on one goal with the hidden state kept (garage episode_per_task=10)."""
    learning_rate: float = 5e-4
    """Adam step size (garage optimizer_args learning_rate=5e-4)."""
    clip_eps: float = 0.2
    """PPO clip range ε (garage lr_clip_range=0.2)."""
    epochs: int = 10
    """Passes over the iteration's trials (garage max_optimization_epochs=10)."""
    minibatch_trials: int = 32
    """Whole trials per minibatch (garage batch_size=32 over its [trials, time] inputs: with 10 trials,
    one minibatch). If the env count is not a multiple, each epoch uses a random subset that is."""
    gamma: float = 0.99
    """Discount across the whole trial (garage discount=0.99)."""
    gae_lambda: float = 0.95
    """GAE λ (garage gae_lambda=0.95)."""
    entropy_coef: float = 5e-6
    """Weight of the max-entropy reward bonus −log π(a|h) (garage entropy_method="max",
    use_neg_logli_entropy=True, stop_entropy_gradient=True, policy_ent_coeff=5e-6)."""
    normalize_advantages: bool = False
    """Standardise advantages per iteration (garage center_adv=False)."""
    init_std: float = 1.0
    """Initial action standard deviation (garage init_std=1)."""
    min_std: float = 0.5
    """Floor of the action standard deviation (garage min_std=0.5)."""
    max_std: float = 1.5
    """Ceiling of the action standard deviation (garage max_std=1.5)."""
    baseline_reg: float = 1e-5
    """Ridge coefficient of the linear feature baseline (garage LinearFeatureBaseline reg_coeff=1e-5;
    the baseline itself follows garage's ML10 example at commit 7ecab12, the later script fits a
    128-128 MLP)."""

    def __post_init__(self) -> None:
        for name in ("hidden_size", "episodes_per_trial", "epochs", "minibatch_trials"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        for name in ("learning_rate", "clip_eps", "init_std", "min_std"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("gamma", "gae_lambda"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        for name in ("entropy_coef", "baseline_reg"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not self.min_std <= self.init_std <= self.max_std:
            raise ValueError(
                f"init_std must lie in [min_std, max_std] = [{self.min_std}, {self.max_std}], "
                f"got {self.init_std}"
            )


# --- policy ----------------------------------------------------------------------------------------------


class GRUPolicy(nn.Module):
    """One step of the GRU Gaussian policy: (hidden, input) -> (hidden', (mean, log_std)).

    The mean is tanh-squashed and the log-std is a second head on the same GRU output, clipped to
    [log min_std, log max_std] (garage: output_nonlinearity=tanh, std_share_network=True).
    """

    hidden_size: int
    action_size: int
    init_std: float
    min_std: float
    max_std: float

    @nn.compact
    def __call__(
        self, hidden: Float[Array, "batch hidden"], x: Float[Array, "batch inp"]
    ) -> tuple[Float[Array, "batch hidden"], tuple[Float[Array, "batch act"], Float[Array, "batch act"]]]:
        hidden, out = nn.GRUCell(self.hidden_size, name="gru")(hidden, x)
        mean = jnp.tanh(nn.Dense(self.action_size, name="mean")(out))
        raw_log_std = nn.Dense(
            self.action_size, name="log_std", bias_init=nn.initializers.constant(math.log(self.init_std))
        )(out)
        log_std = jnp.clip(raw_log_std, math.log(self.min_std), math.log(self.max_std))
        return hidden, (mean, log_std)


def policy_inputs(
    obs: Float[Array, "envs obs"],
    prev_action: Float[Array, "envs act"],
    prev_reward: Float[Array, " envs"],
    prev_done: Bool[Array, " envs"],
) -> Float[Array, "envs inp"]:
    """The RL² input [o_t, a_{t−1}, r_{t−1}, d_{t−1}] (Duan et al. §2.2; garage's RL2Env)."""
    return jnp.concatenate(
        [obs, prev_action, prev_reward[:, None], prev_done[:, None].astype(obs.dtype)], axis=-1
    ).astype(jnp.float32)


def unroll(
    policy: GRUPolicy, params: PyTree, inputs: Float[Array, "time trials inp"]
) -> tuple[Float[Array, "time trials act"], Float[Array, "time trials act"]]:
    """Run the GRU from a zero hidden state over whole trials (time-major); the training-time dist_fn."""
    hidden = jnp.zeros((inputs.shape[1], policy.hidden_size), inputs.dtype)

    def body(h: jax.Array, x: jax.Array) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
        return policy.apply(params, h, x)

    return jax.lax.scan(body, hidden, inputs)[1]


# --- agent state -----------------------------------------------------------------------------------------


@struct.dataclass
class State:
    """Everything to continue training: policy parameters, Adam state, iteration counter."""

    params: PyTree
    opt_state: optax.OptState
    iteration: Int[Array, ""]
    config: Config = struct.field(pytree_node=False)
    policy: GRUPolicy = struct.field(pytree_node=False)


def _optimizer(config: Config) -> optax.GradientTransformation:
    return optax.adam(config.learning_rate)


def init(key: jax.Array, spec: EnvSpec, config: Config) -> State:
    policy = GRUPolicy(config.hidden_size, spec.action_size, config.init_std, config.min_std, config.max_std)
    input_size = spec.obs_size + spec.action_size + 2
    params = policy.init(key, jnp.zeros((1, config.hidden_size)), jnp.zeros((1, input_size)))
    opt_state = _optimizer(config).init(params)
    return State(params, opt_state, jnp.zeros((), jnp.int32), config, policy)


def episodes_per_goal(config: Config) -> int:
    """The training env keeps a goal for one trial."""
    return config.episodes_per_trial


def vector_steps_per_iteration(spec: EnvSpec, config: Config) -> int:
    """One trial per env per iteration."""
    return config.episodes_per_trial * spec.episode_length


# --- recurrent rollout -----------------------------------------------------------------------------------


class RolloutCarry(NamedTuple):
    """Scan carry: env, last TimeStep, the policy's memory, the previous action/reward/done fed back in,
    episodes finished in the current trial, and the key."""

    env: PyTree
    timestep: TimeStep
    hidden: Float[Array, "envs hidden"]
    prev_action: Float[Array, "envs act"]
    prev_reward: Float[Array, " envs"]
    prev_done: Bool[Array, " envs"]
    episodes_in_trial: Int[Array, " envs"]
    key: jax.Array


@struct.dataclass
class TrialStep:
    """One recorded vector step (time-major `[steps, envs, ...]` after the scan)."""

    inputs: Float[Array, "envs inp"]
    """[o_t, a_{t−1}, r_{t−1}, d_{t−1}] as fed to the GRU."""
    hidden: Float[Array, "envs hidden"]
    """The hidden state the GRU read at this step (zeros at a trial's first step)."""
    action: Float[Array, "envs act"]
    log_prob: Float[Array, " envs"]
    reward: Float[Array, " envs"]
    terminated: Bool[Array, " envs"]
    truncated: Bool[Array, " envs"]
    success: Bool[Array, " envs"]


def init_carry(state: State, env_state: PyTree, timestep: TimeStep, key: jax.Array) -> RolloutCarry:
    """A trial start for every env: zero memory and zero previous action/reward/done."""
    n, act = timestep.obs.shape[0], state.policy.action_size
    return RolloutCarry(
        env_state,
        timestep,
        jnp.zeros((n, state.config.hidden_size)),
        jnp.zeros((n, act)),
        jnp.zeros(n),
        jnp.zeros(n, bool),
        jnp.zeros(n, jnp.int32),
        key,
    )


def rollout_step(env: Env, state: State, carry: RolloutCarry, _: None) -> tuple[RolloutCarry, TrialStep]:
    """Act, step every env, and reset the memory of the envs whose trial just ended."""
    key, act_key = jax.random.split(carry.key)
    x = policy_inputs(carry.timestep.obs, carry.prev_action, carry.prev_reward, carry.prev_done)
    hidden, (mean, log_std) = state.policy.apply(state.params, carry.hidden, x)
    action, log_prob = pg.sample_gaussian(mean, log_std, act_key)
    env_state, step = env.step(carry.env, action)
    done = step.terminated | step.truncated
    episodes = carry.episodes_in_trial + done
    trial_end = episodes >= state.config.episodes_per_trial
    new = RolloutCarry(
        env=env_state,
        timestep=step,
        hidden=jnp.where(trial_end[:, None], 0.0, hidden),
        prev_action=jnp.where(trial_end[:, None], 0.0, action),
        prev_reward=jnp.where(trial_end, 0.0, step.reward),
        prev_done=done & ~trial_end,
        episodes_in_trial=jnp.where(trial_end, 0, episodes),
        key=key,
    )
    record = TrialStep(
        x, carry.hidden, action, log_prob, step.reward, step.terminated, step.truncated, step.success
    )
    return new, record


def rollout(env: Env, state: State, carry: RolloutCarry, num_steps: int) -> tuple[RolloutCarry, TrialStep]:
    """`num_steps` vector steps in one `lax.scan`; the record is time-major `[num_steps, envs, ...]`."""
    return jax.lax.scan(functools.partial(rollout_step, env, state), carry, length=num_steps)


# --- advantages and update -------------------------------------------------------------------------------


def trial_advantages(
    rewards: Float[Array, "time trials"],
    values: Float[Array, "time trials"],
    *,
    gamma: float,
    lam: float,
) -> Float[Array, "time trials"]:
    """GAE over a trial as one episode (garage): V(s'_t) = V(s_{t+1}) across inner episode boundaries,
    the trial's end a termination."""
    next_values = jnp.concatenate([values[1:], jnp.zeros_like(values[:1])])
    end = jnp.zeros(values.shape, bool).at[-1].set(True)
    return gae(rewards, values, next_values, end, jnp.zeros_like(end), gamma=gamma, lam=lam)


def fit_baseline(
    inputs: Float[Array, "time trials inp"], rewards: Float[Array, "time trials"], config: Config
) -> Float[Array, "time trials"]:
    """garage's linear feature baseline on the augmented observation, t = step within the trial, fitted
    to the trial's discounted returns; returns its values on the same data."""
    time = jnp.arange(inputs.shape[0], dtype=inputs.dtype)[:, None]
    features = pg.linear_baseline_features(inputs, time)
    end = jnp.zeros(rewards.shape, bool).at[-1].set(True)
    returns = discounted_returns(rewards, end, jnp.zeros_like(end), gamma=config.gamma)
    flat = features.reshape(-1, features.shape[-1])
    weights = pg.fit_linear_baseline(flat, returns.reshape(-1), config.baseline_reg)
    return pg.linear_baseline_values(weights, features)


def _minibatches(key: jax.Array, num_trials: int, config: Config) -> Int[Array, "mb size"]:
    count = max(1, num_trials // config.minibatch_trials)
    size = num_trials // count
    return jax.random.permutation(key, num_trials)[: count * size].reshape(count, size)


def train_iteration(env: Env, state: State, key: jax.Array) -> tuple[State, dict[str, jax.Array]]:
    """Collect one trial per env, fit the baseline, then `epochs` PPO passes over whole-trial minibatches."""
    config, spec = state.config, env.spec
    _, per_goal = goal_schedule(env)
    if per_goal is not None and per_goal != config.episodes_per_trial:
        raise ValueError(
            f"the training env keeps a goal for {per_goal} episodes; RL² needs episodes_per_goal = "
            f"episodes_per_trial = {config.episodes_per_trial}"
        )
    reset_key, rollout_key, update_key = jax.random.split(key, 3)
    env_state, timestep = env.reset(reset_key)
    carry = init_carry(state, env_state, timestep, rollout_key)
    _, trial = rollout(env, state, carry, vector_steps_per_iteration(spec, config))

    rewards = trial.reward - config.entropy_coef * trial.log_prob  # garage's max-entropy bonus
    values = fit_baseline(trial.inputs, rewards, config)
    advantages = trial_advantages(rewards, values, gamma=config.gamma, lam=config.gae_lambda)
    if config.normalize_advantages:
        advantages = normalize(advantages)
    batch = pg.PolicyBatch(trial.inputs, trial.action, advantages, trial.log_prob)  # time-major

    loss_fn = functools.partial(
        pg.ppo_loss,
        dist_fn=functools.partial(unroll, state.policy),
        clip_eps=config.clip_eps,
        entropy_coef=0.0,  # the entropy enters through the rewards (garage's "max" method)
    )
    optimizer = _optimizer(config)

    def minibatch_step(carry, idx):
        params, opt_state = carry
        mb = jax.tree.map(lambda x: x[:, idx], batch)
        out = gradient_step(loss_fn, optimizer, params, opt_state, mb)
        return (out.params, out.opt_state), (out.loss, out.aux, out.grad_norm)

    def epoch(carry, epoch_key):
        return jax.lax.scan(minibatch_step, carry, _minibatches(epoch_key, spec.num_envs, config))

    epoch_keys = jax.random.split(update_key, config.epochs)
    (params, opt_state), (loss, aux, grad_norm) = jax.lax.scan(
        epoch, (state.params, state.opt_state), epoch_keys
    )

    T, N = spec.episode_length, config.episodes_per_trial
    episode_success = trial.success.reshape(N, T, -1).any(axis=1)  # [episodes, envs]
    metrics = {
        "train/success": episode_success.mean(),
        "train/first_episode_success": episode_success[0].mean(),
        "train/last_episode_success": episode_success[-1].mean(),
        "train/episode_return": trial.reward.sum() / (N * spec.num_envs),
        "train/policy_loss": loss.mean(),
        "train/approx_kl": aux.approx_kl[-1].mean(),
        "train/clip_fraction": aux.clip_fraction[-1].mean(),
        "train/entropy": aux.entropy.mean(),
        "train/grad_norm": grad_norm.mean(),
        "train/advantage_std": advantages.std(),
    }
    metrics = {k: v.astype(jnp.float32) for k, v in metrics.items()}
    new_state = state.replace(params=params, opt_state=opt_state, iteration=state.iteration + 1)
    return new_state, metrics


# --- meta-test (mtrl.meta_evaluation.MetaAgent) ----------------------------------------------------------


@struct.dataclass
class Context:
    """Per-env memory during a goal round: hidden state, the last action taken, and whether the next
    act is the round's first (whose TimeStep still describes the previous round's last transition)."""

    hidden: Float[Array, "envs hidden"]
    prev_action: Float[Array, "envs act"]
    first: Bool[Array, " envs"]


def init_adaptation(state: State, spec: EnvSpec, key: jax.Array) -> Context:
    """A trial start: zero hidden state and zero previous action, reward and done."""
    n = spec.num_envs
    return Context(
        jnp.zeros((n, state.config.hidden_size)), jnp.zeros((n, spec.action_size)), jnp.ones(n, bool)
    )


def act(
    state: State, context: Context, step: TimeStep, key: jax.Array, deterministic: bool
) -> tuple[Float[Array, "envs act"], Context]:
    """Feed [obs, previous action, step.reward, step's done] (zeros at a round's first step); the
    deterministic action is the mean."""
    reward = jnp.where(context.first, 0.0, step.reward)
    done = ~context.first & (step.terminated | step.truncated)
    x = policy_inputs(step.obs, context.prev_action, reward, done)
    hidden, (mean, log_std) = state.policy.apply(state.params, context.hidden, x)
    sample, _ = pg.sample_gaussian(mean, log_std, key)
    action = jnp.where(deterministic, mean, sample)
    return action, Context(hidden, action, jnp.zeros_like(context.first))


def adapt(state: State, context: Context, episodes: Transition, key: jax.Array) -> Context:
    """RL² adapts in its hidden state while acting; nothing to do here."""
    return context

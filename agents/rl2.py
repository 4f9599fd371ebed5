"""RL²: a recurrent policy whose hidden state is the fast learner, trained by PPO over whole trials.

Duan et al., "RL²: Fast Reinforcement Learning via Slow Reinforcement Learning" (2016, arXiv:1611.02779),
as the Meta-World baselines ran it: garage's `RL2PPO` with the example `rl2_ppo_metaworld_ml10.py` at
commit 08272cf (rlworkgroup/garage; file:line references below are to that commit).

1. Trials. Each env plays one goal for a trial of `episodes_per_trial` consecutive episodes
   (`episodes_per_goal` below). The GRU's hidden state is kept across the episode boundaries inside a trial,
   so what it learnt about the goal in episode k steers episode k+1, and is reset to zeros only where a
   trial ends (garage `RL2Worker.rollout`, src/garage/tf/algos/rl2.py:152-166, resets the policy once per
   trial; its `start_episode`, :147-150, does not).
2. Inputs, as garage's `RL2Env` builds them (rl2.py:51-96): at every step the GRU reads
   [o_t, a_{t−1}, r̃_{t−1}, d_{t−1}] (r̃: the normalised reward of point 3). At the first step of *every*
   episode, not only a trial's, the last three are zeros (`RL2Env.reset`, rl2.py:64-67, runs at each
   episode start). Inside an episode d_{t−1} is the previous step's termination, which is always 0 there: an
   episode that terminates is over, and its last observation is never fed (`DefaultWorker.step_episode`,
   src/garage/sampler/default_worker.py:108-122); Meta-World and toy episodes only truncate. So the done
   slot is a constant 0, kept for garage's input width. The paper (§2.2, Fig. 1) differs: across an episode
   boundary it feeds the next episode's first state with the last action, the last reward and d = 1. We
   follow garage.
3. Reward normalisation (`normalize_rewards`, garage `normalize(env, normalize_reward=True)` under
   `RL2Env` in the ML10 script, examples/tf/rl2_ppo_metaworld_ml10.py:50-57; `NormalizedEnv`,
   src/garage/envs/normalized_env.py:126-164): every env keeps running moments of its own rewards,
   μ ← (1−α)μ + α r, σ² ← (1−α)σ² + α (r − μ)², from μ = 0, σ² = 1 with α = `reward_norm_alpha` (0.001),
   updated at every step, the current reward included, and the reward becomes r̃ = r / (σ + 1e-8) (no mean
   subtracted). Because the wrapper sits under `RL2Env`, r̃ is both what the GRU reads and what PPO
   optimises (returns, baseline, advantages); garage's env objects persist across task re-samples
   (`SetTaskUpdate` calls `set_task` on the existing wrapped env), so the moments run for the whole
   training run per env slot: here they live in the agent `State`. Logged returns stay raw.
4. Advantages. As garage does, a trial is one long episode for the return: the discount and GAE run
   across its inner episode boundaries (a reward in episode k+1 credits exploration in episode k), and the
   trial's end is a termination (no bootstrap). garage's "max" entropy method adds the policy's
   negative log-likelihood, times `entropy_coef`, to every (normalised) reward (no gradient through it).
5. Baseline: garage's linear feature baseline on the augmented observation, time = step within the
   trial, fitted to the trial's discounted returns on the iteration's own data before the update.
6. PPO's clipped surrogate (Schulman et al., 2017, arXiv:1707.06347, eq. 7), log-probabilities
   re-evaluated by re-running the GRU from zeros over each stored trial; minibatches are whole trials.

Meta-test (garage `MetaEvaluator.evaluate`, src/garage/experiment/meta_evaluator.py:91-103, with
`RL2.get_exploration_policy`/`adapt_policy`, rl2.py:367-400). `init_adaptation` zeros the hidden state; `act`
feeds the `TimeStep`'s reward back in (zeros at every episode's first step, as in training) and keeps the
memory across the N adaptation episodes (garage's `NoResetPolicy`, rl2.py:169-188). `adapt` stores the
hidden state reached at their end, and every scored episode starts from that stored state (garage's
`RL2AdaptedPolicy` saves `_prev_hiddens`, rl2.py:231-232, and restores it in `reset`, rl2.py:235-237,
which `DefaultWorker.start_episode` calls at each episode, default_worker.py:98). The scored episodes
therefore never see each other, and the GRU never runs more than N + 1 episodes from a zero state; the
policy was trained on trials of `episodes_per_trial`, so N + 1 > `episodes_per_trial` is refused with
one line (`check_meta_protocol`). garage's ML10 script explores `episode_per_task` = 10 episodes after
training on trials of 10 (rl2_ppo_metaworld_ml10.py:58-62), so its scored episodes are the GRU's 11th:
our default trial is 11 episodes, so that the protocol's 10 + 1 stays inside a trained trial. The reward
moments at meta-test start each goal round from the training envs' (means over the env slots) and run on
through the round; garage's single test env carries its own from (0, 1) across all test tasks and
evaluations, which our per-round contexts cannot. Episodes must all run `spec.episode_length` steps
(Meta-World and toy envs never terminate early), so a trial is a fixed `episodes_per_trial *
episode_length` block.
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
from mtrl.onpolicy import discounted_returns, gae, normalize
from mtrl.types import AgentTraits, Env, EnvSpec, PyTree, TimeStep, Transition

from . import policy_gradient as pg

TRAITS = AgentTraits(loop="episodic", meta=True)
"""What the wiring reads about this agent (`mtrl.types.AgentTraits`)."""

REWARD_NORM_EPS = 1e-8
"""garage's NormalizedEnv divides by σ + 1e-8 (normalized_env.py:164)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config:
    """RL²-PPO. Defaults: garage's `rl2_ppo_metaworld_ml10.py` (rlworkgroup/garage, commit 08272cf)
    unless a field says otherwise; the meta-batch is the env count (garage: 10 tasks)."""

    hidden_size: int = 256
    """GRU width (garage GaussianGRUPolicy hidden_dim=256; its earlier ML10 example, commit 7ecab12: 64)."""
    episodes_per_trial: int = 11
    """Episodes per trial, all on one goal with the hidden state kept. garage trains on trials of
    episode_per_task=10 and then scores, at meta-test, the GRU's 11th episode (10 exploration episodes, then
    each scored one from the adapted memory); 11 puts that episode inside a trained trial. Must be at least
    the meta-test's adaptation episodes + 1 (`check_meta_protocol`)."""
    normalize_rewards: bool = True
    """Divide each env's rewards by their running standard deviation, both the reward the GRU reads and the
    one PPO optimises (garage: `normalize(env, normalize_reward=True)` under `RL2Env`,
    rl2_ppo_metaworld_ml10.py:50-57; see the module docstring)."""
    reward_norm_alpha: float = 0.001
    """Update rate α of the running reward mean and variance (garage NormalizedEnv reward_alpha=0.001)."""
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
        if not 0.0 < self.reward_norm_alpha <= 1.0:
            raise ValueError(f"reward_norm_alpha must be in (0, 1], got {self.reward_norm_alpha}")
        for name in ("entropy_coef", "baseline_reg"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not self.min_std <= self.init_std <= self.max_std:
            raise ValueError(
                f"init_std must lie in [min_std, max_std] = [{self.min_std}, {self.max_std}], "
                f"got {self.init_std}"
            )


def check_meta_protocol(config: Config, adaptation_episodes: int) -> None:
    """Refuse a meta-test whose scored episodes would run the GRU past the trial length it was trained on:
    each scored episode starts from the memory of the N adaptation episodes, so it is the GRU's (N+1)-th."""
    if adaptation_episodes + 1 > config.episodes_per_trial:
        raise ValueError(
            f"RL² was trained on trials of {config.episodes_per_trial} episodes but meta-test plays "
            f"{adaptation_episodes} adaptation episodes before each scored one (the GRU's episode "
            f"{adaptation_episodes + 1}): set --agent.episodes-per-trial to at least "
            f"{adaptation_episodes + 1} or --loop.meta-adaptation-episodes to at most "
            f"{config.episodes_per_trial - 1}"
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
    obs: Float[Array, "envs obs"], prev_action: Float[Array, "envs act"], prev_reward: Float[Array, " envs"]
) -> Float[Array, "envs inp"]:
    """garage's RL2Env observation [o_t, a_{t−1}, r̃_{t−1}, d_{t−1}]; the done slot is always 0 when fed
    (module docstring, point 2), and the caller zeros a_{t−1} and r̃_{t−1} at every episode's first step."""
    done = jnp.zeros_like(prev_reward)
    return jnp.concatenate([obs, prev_action, prev_reward[:, None], done[:, None]], axis=-1).astype(
        jnp.float32
    )


def unroll(
    policy: GRUPolicy,
    params: PyTree,
    inputs: Float[Array, "time trials inp"],
    hidden: Float[Array, "trials hidden"] | None = None,
) -> tuple[Float[Array, "time trials act"], Float[Array, "time trials act"]]:
    """Run the GRU over whole trials (time-major) from `hidden` (zeros if None); the training-time dist_fn."""
    if hidden is None:
        hidden = jnp.zeros((inputs.shape[1], policy.hidden_size), inputs.dtype)

    def body(h: jax.Array, x: jax.Array) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
        return policy.apply(params, h, x)

    return jax.lax.scan(body, hidden, inputs)[1]


class RewardMoments(NamedTuple):
    """Running mean and variance of each env's raw rewards (garage NormalizedEnv)."""

    mean: Float[Array, " envs"]
    var: Float[Array, " envs"]


def normalize_reward(
    moments: RewardMoments, reward: Float[Array, " envs"], alpha: float
) -> tuple[RewardMoments, Float[Array, " envs"]]:
    """Update the moments with `reward`, then divide it by the running standard deviation (garage
    NormalizedEnv._update_reward_estimate then _apply_normalize_reward, normalized_env.py:126-164)."""
    mean = (1.0 - alpha) * moments.mean + alpha * reward
    var = (1.0 - alpha) * moments.var + alpha * jnp.square(reward - mean)
    return RewardMoments(mean, var), reward / (jnp.sqrt(var) + REWARD_NORM_EPS)


# --- agent state -----------------------------------------------------------------------------------------


@struct.dataclass
class State:
    """Everything to continue training: policy parameters, Adam state, iteration counter, and the running
    reward moments of every training env."""

    params: PyTree
    opt_state: optax.OptState
    iteration: Int[Array, ""]
    reward_moments: RewardMoments
    config: Config = struct.field(pytree_node=False)
    policy: GRUPolicy = struct.field(pytree_node=False)


def _optimizer(config: Config) -> optax.GradientTransformation:
    return optax.adam(config.learning_rate)


def init(key: jax.Array, spec: EnvSpec, config: Config) -> State:
    policy = GRUPolicy(config.hidden_size, spec.action_size, config.init_std, config.min_std, config.max_std)
    input_size = spec.obs_size + spec.action_size + 2
    params = policy.init(key, jnp.zeros((1, config.hidden_size)), jnp.zeros((1, input_size)))
    opt_state = _optimizer(config).init(params)
    moments = RewardMoments(jnp.zeros(spec.num_envs), jnp.ones(spec.num_envs))  # garage: μ = 0, σ² = 1
    return State(params, opt_state, jnp.zeros((), jnp.int32), moments, config, policy)


def episodes_per_goal(config: Config) -> int:
    """The training env keeps a goal for one trial."""
    return config.episodes_per_trial


def vector_steps_per_iteration(spec: EnvSpec, config: Config) -> int:
    """One trial per env per iteration."""
    return config.episodes_per_trial * spec.episode_length


def _policy_reward(
    config: Config, moments: RewardMoments, reward: Float[Array, " envs"]
) -> tuple[RewardMoments, Float[Array, " envs"]]:
    """The reward the GRU reads and PPO optimises: normalised (the moments always run) or raw."""
    moments, normalized = normalize_reward(moments, reward, config.reward_norm_alpha)
    return moments, normalized if config.normalize_rewards else reward


# --- recurrent rollout -----------------------------------------------------------------------------------


class RolloutCarry(NamedTuple):
    """Scan carry: env, last TimeStep, the policy's memory, the previous action and (normalised) reward fed
    back in (zeros at an episode's first step), episodes finished in the current trial, the running reward
    moments, and the key."""

    env: PyTree
    timestep: TimeStep
    hidden: Float[Array, "envs hidden"]
    prev_action: Float[Array, "envs act"]
    prev_reward: Float[Array, " envs"]
    episodes_in_trial: Int[Array, " envs"]
    reward_moments: RewardMoments
    key: jax.Array


@struct.dataclass
class TrialStep:
    """One recorded vector step (time-major `[steps, envs, ...]` after the scan)."""

    inputs: Float[Array, "envs inp"]
    """[o_t, a_{t−1}, r̃_{t−1}, 0] as fed to the GRU (zeros but o_t at an episode's first step)."""
    hidden: Float[Array, "envs hidden"]
    """The hidden state the GRU read at this step (zeros at a trial's first step)."""
    action: Float[Array, "envs act"]
    log_prob: Float[Array, " envs"]
    reward: Float[Array, " envs"]
    """The env's raw reward."""
    policy_reward: Float[Array, " envs"]
    """The reward PPO optimises and the GRU reads next: normalised, or raw without `normalize_rewards`."""
    terminated: Bool[Array, " envs"]
    truncated: Bool[Array, " envs"]
    success: Bool[Array, " envs"]


def init_carry(state: State, env_state: PyTree, timestep: TimeStep, key: jax.Array) -> RolloutCarry:
    """A trial start for every env: zero memory and zero previous action/reward; the reward moments carry on
    from the state."""
    n, act = timestep.obs.shape[0], state.policy.action_size
    return RolloutCarry(
        env_state,
        timestep,
        jnp.zeros((n, state.config.hidden_size)),
        jnp.zeros((n, act)),
        jnp.zeros(n),
        jnp.zeros(n, jnp.int32),
        state.reward_moments,
        key,
    )


def trial_step(env: Env, state: State, carry: RolloutCarry, _: None) -> tuple[RolloutCarry, TrialStep]:
    """Act, step every env, zero the fed-back inputs where an episode ended and the memory where a trial
    ended."""
    key, act_key = jax.random.split(carry.key)
    x = policy_inputs(carry.timestep.obs, carry.prev_action, carry.prev_reward)
    hidden, (mean, log_std) = state.policy.apply(state.params, carry.hidden, x)
    action, log_prob = pg.sample_gaussian(mean, log_std, act_key)
    env_state, step = env.step(carry.env, action)
    moments, policy_reward = _policy_reward(state.config, carry.reward_moments, step.reward)
    done = step.terminated | step.truncated
    episodes = carry.episodes_in_trial + done
    trial_end = episodes >= state.config.episodes_per_trial
    new = RolloutCarry(
        env=env_state,
        timestep=step,
        hidden=jnp.where(trial_end[:, None], 0.0, hidden),
        prev_action=jnp.where(done[:, None], 0.0, action),
        prev_reward=jnp.where(done, 0.0, policy_reward),
        episodes_in_trial=jnp.where(trial_end, 0, episodes),
        reward_moments=moments,
        key=key,
    )
    record = TrialStep(
        x,
        carry.hidden,
        action,
        log_prob,
        step.reward,
        policy_reward,
        step.terminated,
        step.truncated,
        step.success,
    )
    return new, record


def play_steps(env: Env, state: State, carry: RolloutCarry, num_steps: int) -> tuple[RolloutCarry, TrialStep]:
    """`num_steps` vector steps in one `lax.scan`; the record is time-major `[num_steps, envs, ...]`."""
    return jax.lax.scan(functools.partial(trial_step, env, state), carry, length=num_steps)


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
    """Collect one trial per env, fit the baseline, then `epochs` PPO passes over whole-trial minibatches;
    the reward moments run on in the returned state."""
    config, spec = state.config, env.spec
    per_goal = env.schedule.episodes_per_goal
    if per_goal != config.episodes_per_trial:
        raise ValueError(
            f"the training env keeps a goal for {per_goal} episodes; RL² needs episodes_per_goal = "
            f"episodes_per_trial = {config.episodes_per_trial}"
        )
    reset_key, rollout_key, update_key = jax.random.split(key, 3)
    env_state, timestep = env.reset(reset_key)
    carry = init_carry(state, env_state, timestep, rollout_key)
    carry, trial = play_steps(env, state, carry, vector_steps_per_iteration(spec, config))

    rewards = trial.policy_reward - config.entropy_coef * trial.log_prob  # garage's max-entropy bonus
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
        "train/reward_norm_std": jnp.sqrt(carry.reward_moments.var).mean(),
    }
    metrics = {k: v.astype(jnp.float32) for k, v in metrics.items()}
    new_state = state.replace(
        params=params,
        opt_state=opt_state,
        iteration=state.iteration + 1,
        reward_moments=carry.reward_moments,
    )
    return new_state, metrics


# --- meta-test (mtrl.meta_evaluation.MetaAgent) ----------------------------------------------------------


@struct.dataclass
class Context:
    """Per-env memory during a goal round: hidden state, the last action taken, whether the next act is the
    round's first (whose TimeStep still describes the previous round's last transition), the running reward
    moments, and, once `adapt` has run, the adapted hidden state every scored episode starts from."""

    hidden: Float[Array, "envs hidden"]
    prev_action: Float[Array, "envs act"]
    first: Bool[Array, " envs"]
    reward_moments: RewardMoments
    adapted: Float[Array, "envs hidden"]
    """The hidden state at the end of the adaptation episodes (zeros before `adapt`)."""
    scored: Bool[Array, " envs"]
    """Whether `adapt` has run: each episode that starts from now on starts from `adapted`."""


def init_adaptation(state: State, spec: EnvSpec, key: jax.Array) -> Context:
    """A trial start: zero hidden state and zero previous action and reward; the reward moments start from
    the training envs' (their means over the env slots)."""
    n = spec.num_envs
    hidden = jnp.zeros((n, state.config.hidden_size))
    moments = jax.tree.map(lambda x: jnp.full(n, x.mean()), state.reward_moments)
    return Context(
        hidden=hidden,
        prev_action=jnp.zeros((n, spec.action_size)),
        first=jnp.ones(n, bool),
        reward_moments=moments,
        adapted=hidden,
        scored=jnp.zeros(n, bool),
    )


def act(
    state: State, context: Context, step: TimeStep, key: jax.Array, deterministic: bool
) -> tuple[Float[Array, "envs act"], Context]:
    """Feed [obs, previous action, step's (normalised) reward, 0], zeros but obs at every episode's first
    step; after `adapt`, every episode starts from the adapted hidden state. The deterministic action is the
    mean."""
    config = state.config
    episode_start = context.first | step.terminated | step.truncated
    moments, reward = _policy_reward(config, context.reward_moments, step.reward)
    # the round's first TimeStep is the previous round's last transition (or a reset): not this goal's
    moments = jax.tree.map(
        lambda new, old: jnp.where(context.first, old, new), moments, context.reward_moments
    )
    reward = jnp.where(episode_start, 0.0, reward)
    prev_action = jnp.where(episode_start[:, None], 0.0, context.prev_action)
    hidden = jnp.where((context.scored & episode_start)[:, None], context.adapted, context.hidden)
    x = policy_inputs(step.obs, prev_action, reward)
    hidden, (mean, log_std) = state.policy.apply(state.params, hidden, x)
    sample, _ = pg.sample_gaussian(mean, log_std, key)
    action = jnp.where(deterministic, mean, sample)
    return action, context.replace(
        hidden=hidden, prev_action=action, first=jnp.zeros_like(context.first), reward_moments=moments
    )


def adapt(state: State, context: Context, episodes: Transition, key: jax.Array) -> Context:
    """Store the hidden state the adaptation episodes led to (garage's RL2AdaptedPolicy); refuse a protocol
    whose scored episodes would run the GRU past its trained trial length (`check_meta_protocol`)."""
    check_meta_protocol(state.config, episodes.reward.shape[1])
    return context.replace(adapted=context.hidden, scored=jnp.ones_like(context.scored))

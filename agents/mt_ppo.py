"""MT-PPO: one PPO agent shared by all tasks, the Meta-World paper's multi-task PPO baseline.

Yu et al., "Meta-World: A Benchmark and Evaluation for Multi-Task and Meta Reinforcement Learning" (CoRL 2019,
arXiv:1910.10897) train one Gaussian MLP policy and one MLP baseline on the observation, which on MT
benchmarks ends with the one-hot task id, with PPO (Schulman et al., "Proximal Policy Optimization
Algorithms", 2017, arXiv:1707.06347): the clipped surrogate of eq. 7 on GAE advantages (Schulman et al.,
ICLR 2016, arXiv:1506.02438, eq. 16), several epochs of minibatch Adam over every sample of an iteration.

Two recipes. `Config()` is the one behind the paper's MT10 number: garage's `merge-mw-v2-examples` branch,
`metaworld_examples/mtppo_metaworld_mt10.py` (TF PPO; "MW10" below, MT50 in `..._mt50.py`, "MW50"), where
the paper's results were run (krzentner in Farama-Foundation/Metaworld#349; garage PR #2287). Its pieces:

- policy: 256×256 tanh MLP whose last layer also outputs the log-std (`std_share_network`), std clipped
  to [0.5, 1.5];
- rewards augmented by the maximum-entropy bonus c·(−log π(a|s)) (`entropy_method='max'`,
  `use_neg_logli_entropy`, c = 5e-3), raw (uncentred) GAE advantages, no bootstrap at the time limit;
- 16 epochs of Adam (lr 5e-4) over minibatches of 32 whole episodes (garage's FirstOrderOptimizer batches
  its `[episodes, time]` inputs along the episodes), stopping early when an epoch changes the full-batch
  loss by < 1e-6;
- baseline: garage's GaussianMLPBaseline, a 256×256 tanh MLP on standardised observations predicting
  standardised discounted returns, fitted after the policy step by L-BFGS on its Gaussian likelihood with
  an adaptive KL penalty (PenaltyLBFGSOptimizer, mean KL ≤ 0.01);
- 2 episodes per env and iteration, each env keeping its goal for 50 iterations (`task_update_frequency`).

`garage_example_config()` is garage's newer example (master, `src/garage/examples/torch/
mtppo_metaworld_mt10.py` and torch PPO's defaults): 64×64 policy with a state-independent std, 32×32 value
function trained by Adam alongside, standardised advantages, minibatches of 64 samples, no entropy, goals
fixed for the whole run.

Deviations from garage: the max-entropy bonus uses the behaviour policy's log-density (garage re-evaluates
−log π(a|s) at the current policy in every minibatch and when fitting the baseline; with c = 5e-3 the
difference is tiny); the log-std head is a Dense layer of its own where garage TF slices one Dense of
2·|A| outputs (same function; the Glorot range differs by < 1 %); L-BFGS is optax's (zoom line search)
where garage uses scipy's L-BFGS-B, in float32 where garage fits in float64; the Adam value function
("adam", the example) regresses the mean by squared error on the policy's minibatches, where garage
maximises a Gaussian likelihood in 10 epochs of its own after the policy's.

One `train_iteration` is PPO's algorithm box: run the policy for whole episodes in every env, estimate
advantages Â_1..Â_T, then optimise the surrogate for K epochs with minibatches of size M, then fit the
baseline.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from jaxtyping import Array, Float, Int

from mtrl import onpolicy
from mtrl.gradients import gradient_step
from mtrl.types import AgentTraits, Env, EnvSpec, PyTree

from . import gaussian_baseline
from . import policy_gradient as pg
from .gaussian_baseline import BaselineFit, Normalizer
from .gradient_methods.core import check_positive

TRAITS = AgentTraits(loop="episodic")
"""What the wiring reads about this agent (`mtrl.types.AgentTraits`)."""

MINIBATCH_UNITS = ("episode", "sample")
VALUE_FITS = ("penalty_lbfgs", "adam")
VALUE_TARGETS = ("monte_carlo", "lambda_return")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config:
    """MT-PPO. Defaults: the Meta-World paper's MT10 recipe; `garage_example_config()`: garage's example.

    Sources, file:line: "MW10"/"MW50" = garage@merge-mw-v2-examples metaworld_examples/
    mtppo_metaworld_mt{10,50}.py; "tf/" = that branch's src/garage/tf/; "ex" = garage@master
    src/garage/examples/torch/mtppo_metaworld_mt10.py; "tppo" = garage@master src/garage/torch/algos/ppo.py;
    "tpol" = garage@master src/garage/torch/policies/gaussian_mlp_policy.py.
    """

    policy_hidden_sizes: tuple[int, ...] = (256, 256)
    """Tanh hidden widths of the policy (MW10:50 (256, 256); MW50:51 (512, 512); ex:57 (64, 64))."""
    std_head: bool = True
    """Log-std output by the policy MLP's last layer (MW10:53 std_share_network=True; tpol: a parameter)."""
    min_std: float | None = 0.5
    """Lower clip of the action std, None for none (MW10:54 0.5; tpol:64 1e-6)."""
    max_std: float | None = 1.5
    """Upper clip of the action std, None for none (MW10:55 1.5; tpol:65 None)."""
    init_std: float = 1.0
    """Initial action std (tf/policies/gaussian_mlp_policy.py:89 1.0; tpol:63 1.0)."""
    value_hidden_sizes: tuple[int, ...] = (256, 256)
    """Tanh hidden widths of the baseline (MW10:60 (256, 256); MW50:61 (512, 512); ex:63 (32, 32))."""
    value_fit: str = "penalty_lbfgs"
    """Baseline fit "penalty_lbfgs" (MW10:61 → tf/baselines/gaussian_mlp_baseline.py:114) or "adam" (tppo)."""
    value_max_kl: float = 0.01
    """KL limit of a "penalty_lbfgs" fit (tf/baselines/gaussian_mlp_baseline.py:91 max_kl_step=0.01)."""
    policy_lr: float = 5e-4
    """Adam learning rate of the policy (MW10:79 5e-4; tppo:67 2.5e-4); 0 freezes it."""
    value_lr: float = 2.5e-4
    """Adam learning rate of an "adam" value function (tppo:73 2.5e-4); 0 freezes it."""
    gamma: float = 0.99
    """Discount factor (MW10:74 0.99; ex:76 0.99)."""
    gae_lambda: float = 0.95
    """GAE λ (MW10:75 0.95; ex:77 0.95)."""
    clip_eps: float = 0.2
    """Clip range ε of eq. 7 (MW10:76 lr_clip_range=0.2; ex:79 0.2)."""
    epochs: int = 16
    """Passes K over the iteration's samples (MW10:80 max_optimization_epochs=16; tppo:69 10)."""
    minibatch_size: int = 32
    """Minibatch size M in `minibatch_unit`s (tf/optimizers/first_order_optimizer.py:39 32; tppo:70 64)."""
    minibatch_unit: str = "episode"
    """M counts whole "episode"s (garage np/optimizers/minibatch_dataset.py:12) or "sample"s (tppo)."""
    loss_tolerance: float = 1e-6
    """Stop epochs once one changes the full loss by less (tf first_order_optimizer.py:38,177; tppo: 0)."""
    entropy_coef: float = 0.0
    """Entropy bonus c₂ of eq. 9 in the loss (MW10:83 'max' and ex: none; PPO paper MuJoCo: none)."""
    max_entropy_coef: float = 5e-3
    """Reward bonus c·(−log π(a|s)) (MW10:22,83,88 entropy 5e-3, 'max', neg-loglik; ex: none)."""
    normalize_advantages: bool = False
    """Standardise advantages over the iteration (MW10:85 center_adv=False; ex:78 True)."""
    bootstrap_truncation: bool = False
    """Bootstrap GAE and returns at the time limit (garage: never, tf/_functions.py:429-431; Pardo et al.)."""
    value_target: str = "monte_carlo"
    """Baseline target: "monte_carlo" discounted return (tf/algos/npo.py:433-436, 490) or "lambda_return"."""
    episodes_per_iteration: int = 2
    """Whole episodes per env and iteration (MW10:97 batch_size=2 per worker via npo.py:635-641; ex: 1)."""
    goal_resample_every: int = 50
    """Iterations each env keeps its goal, 0 for never (MW10:92 task_update_frequency=50; ex:50 never)."""

    def __post_init__(self) -> None:
        # A list (from JSON, say) would make the config, a static pytree field, unhashable.
        object.__setattr__(self, "policy_hidden_sizes", tuple(self.policy_hidden_sizes))
        object.__setattr__(self, "value_hidden_sizes", tuple(self.value_hidden_sizes))
        for name in ("policy_hidden_sizes", "value_hidden_sizes"):
            sizes = getattr(self, name)
            if not sizes or min(sizes) < 1:
                raise ValueError(f"{name} must be non-empty positive widths, got {sizes}")
        for name, valid in (
            ("minibatch_unit", MINIBATCH_UNITS),
            ("value_fit", VALUE_FITS),
            ("value_target", VALUE_TARGETS),
        ):
            if getattr(self, name) not in valid:
                raise ValueError(f"unknown {name} {getattr(self, name)!r}; valid: {', '.join(valid)}")
        check_positive("init_std", self.init_std)
        check_positive("value_max_kl", self.value_max_kl)
        check_positive("policy_lr", self.policy_lr, allow_zero=True)
        check_positive("value_lr", self.value_lr, allow_zero=True)
        check_positive("entropy_coef", self.entropy_coef, allow_zero=True)
        check_positive("max_entropy_coef", self.max_entropy_coef, allow_zero=True)
        check_positive("loss_tolerance", self.loss_tolerance, allow_zero=True)
        check_positive("clip_eps", self.clip_eps)
        for name, value in (("min_std", self.min_std), ("max_std", self.max_std)):
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be None or > 0, got {value}")
        if self.min_std is not None and self.max_std is not None and not self.min_std < self.max_std:
            raise ValueError(f"min_std must be < max_std, got min_std={self.min_std}, max_std={self.max_std}")
        for name in ("gamma", "gae_lambda"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        for name, low in (("epochs", 1), ("minibatch_size", 1), ("episodes_per_iteration", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        value = self.goal_resample_every
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"goal_resample_every must be an integer >= 0 (0: never), got {value!r}")


def garage_example_config(**overrides: Any) -> Config:
    """garage's newer MT-PPO example (master src/garage/examples/torch/mtppo_metaworld_mt10.py with torch
    PPO's defaults): 64×64 policy with a state-independent std (floor 1e-6), 32×32 value function trained
    by Adam (lr 2.5e-4; here on the policy's minibatches, interleaved, where garage runs its own 10 epochs
    of shuffled 64-sample minibatches after the policy's), Adam lr 2.5e-4, 10 epochs of 64-sample minibatches,
    standardised advantages, no entropy bonus, and one goal per task for the whole run (the example samples
    its tasks once, line 50). Its batch of 1,024 env steps is less than one 500-step episode per task; one
    episode per env is the nearest whole-episode batch that visits every task."""
    recipe = dict(
        policy_hidden_sizes=(64, 64),
        std_head=False,
        min_std=1e-6,
        max_std=None,
        value_hidden_sizes=(32, 32),
        value_fit="adam",
        policy_lr=2.5e-4,
        value_lr=2.5e-4,
        epochs=10,
        minibatch_size=64,
        minibatch_unit="sample",
        loss_tolerance=0.0,
        max_entropy_coef=0.0,
        normalize_advantages=True,
        episodes_per_iteration=1,
        goal_resample_every=0,
    )
    return Config(**{**recipe, **overrides})


@struct.dataclass
class State:
    """Policy and baseline parameters with their optimiser states, and the iteration count."""

    policy_params: PyTree
    value_params: PyTree
    policy_opt_state: optax.OptState
    value_opt_state: optax.OptState
    iteration: Int[Array, ""]
    value_log_std: Float[Array, ""]
    """The "penalty_lbfgs" baseline's learned log-std on the standardised scale (its Gaussian likelihood)."""
    value_normalizer: Normalizer
    value_penalty: Float[Array, ""]
    """The KL penalty that the next "penalty_lbfgs" fit starts from (garage keeps it across fits)."""
    goal_key: jax.Array
    """Where each goal block's reset key comes from: the same key holds the goals across iterations."""
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


def make_policy(spec: EnvSpec, config: Config) -> pg.GaussianPolicy:
    """The configured policy, with Glorot-uniform kernels as garage's (TF glorot_uniform, torch xavier)."""
    return pg.GaussianPolicy(
        config.policy_hidden_sizes,
        spec.action_size,
        config.init_std,
        std_head=config.std_head,
        min_std=config.min_std,
        max_std=config.max_std,
        glorot_init=True,
    )


def init(key: jax.Array, spec: EnvSpec, config: Config) -> State:
    """A fresh MT-PPO agent for the env described by `spec`."""
    policy = make_policy(spec, config)
    value = pg.ValueNetwork(config.value_hidden_sizes, glorot_init=True)
    policy_key, value_key, goal_key = jax.random.split(key, 3)
    dummy = jnp.zeros((1, spec.obs_size), jnp.float32)
    policy_params = policy.init(policy_key, dummy)
    value_params = value.init(value_key, dummy)
    optimizers = make_optimizers(config)
    normalizer = Normalizer(
        x_mean=jnp.zeros(spec.obs_size, jnp.float32),
        x_std=jnp.ones(spec.obs_size, jnp.float32),
        y_mean=jnp.zeros((), jnp.float32),
        y_std=jnp.ones((), jnp.float32),
    )
    return State(
        policy_params=policy_params,
        value_params=value_params,
        policy_opt_state=optimizers.policy.init(policy_params),
        value_opt_state=optimizers.value.init(value_params),
        iteration=jnp.zeros((), jnp.int32),
        value_log_std=jnp.zeros((), jnp.float32),  # garage GaussianMLPBaseline init_std=1.0
        value_normalizer=normalizer,
        value_penalty=jnp.ones((), jnp.float32),  # PenaltyLBFGSOptimizer initial_penalty=1.0
        goal_key=goal_key,
        config=config,
        policy=policy,
        value=value,
        action_low=spec.action_low,
        action_high=spec.action_high,
    )


def episodes_per_goal(config: Config) -> int:
    """Every env keeps its goal for all of an iteration's episodes (garage: one task per worker)."""
    return config.episodes_per_iteration


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


def goal_reset_key(state: State) -> jax.Array:
    """The reset key of the current goal block: iterations i and j share goals iff
    i // goal_resample_every == j // goal_resample_every (always, with 0)."""
    every = state.config.goal_resample_every
    block = state.iteration // every if every else jnp.zeros((), jnp.int32)
    return jax.random.fold_in(state.goal_key, block)


def collect(env: Env, state: State, key: jax.Array) -> onpolicy.Trajectory:
    """The iteration's episodes, `[episodes, time, envs]`: goals from the goal block, actions from `key`."""
    return onpolicy.collect_episodes(
        env,
        functools.partial(sample_policy, state.policy),
        state.policy_params,
        key,
        state.config.episodes_per_iteration,
        reset_key=goal_reset_key(state),
    )


# --- baseline and advantages -------------------------------------------------------------------------------


def baseline_values(
    state: State, obs: Float[Array, "*batch obs"], value_params: PyTree | None = None
) -> Float[Array, "*batch"]:
    """V(s): the value network on standardised observations, mapped back to the returns' scale."""
    norm = state.value_normalizer
    params = state.value_params if value_params is None else value_params
    return state.value.apply(params, (obs - norm.x_mean) / norm.x_std) * norm.y_std + norm.y_mean


class Samples(NamedTuple):
    """The iteration's flat samples: the surrogate's inputs and the value function's regression target."""

    policy: pg.PolicyBatch
    value_target: Float[Array, " batch"]


def augmented_rewards(state: State, traj: onpolicy.Trajectory) -> Float[Array, "*batch"]:
    """r + c·(−log π(a|s)): the maximum-entropy reward with garage's negative-log-likelihood estimate of the
    entropy at the sampled action (no gradient: it is data); r itself when c = 0."""
    coef = state.config.max_entropy_coef
    return traj.reward - coef * traj.log_prob if coef else traj.reward


def estimate_advantages(
    state: State, traj: onpolicy.Trajectory
) -> tuple[Float[Array, "steps envs"], Float[Array, "steps envs"]]:
    """GAE advantages and value targets of a time-major trajectory, both `[episodes * time, envs]`.

    Rewards are `augmented_rewards`. V(s'_t) is the value of the true next state (`next_obs`); at the time
    limit it enters only with `bootstrap_truncation` (Pardo et al., ICML 2018, arXiv:1712.00378); garage
    cuts there (its baselines are padded with 0 after the last step). Targets: the discounted Monte-Carlo
    return (garage), bootstrapped at the time limit likewise, or the λ-return Â_t + V(s_t).
    """
    config = state.config
    flat = jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), traj)  # episodes line up: flat time
    rewards = augmented_rewards(state, flat)
    values = baseline_values(state, flat.obs)
    next_values = baseline_values(state, flat.next_obs)
    cut = flat.terminated if config.bootstrap_truncation else flat.terminated | flat.truncated
    advantages = onpolicy.gae(
        rewards, values, next_values, cut, flat.truncated, gamma=config.gamma, lam=config.gae_lambda
    )
    if config.value_target == "lambda_return":
        return advantages, advantages + values
    returns = onpolicy.discounted_returns(
        rewards,
        flat.terminated,
        flat.truncated,
        gamma=config.gamma,
        next_values=next_values if config.bootstrap_truncation else None,
    )
    return advantages, returns


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


def episode_rows(episodes: int, time: int, envs: int) -> np.ndarray:
    """Sample indices of each whole episode, `[episodes * envs, time]`, in the flat order of
    `make_samples` (a `[episodes, time, envs]` trajectory flattened): episode (e, n) step t is at
    (e·time + t)·envs + n."""
    e, n, t = np.meshgrid(np.arange(episodes), np.arange(envs), np.arange(time), indexing="ij")
    return ((e * time + t) * envs + n).reshape(episodes * envs, time)


# --- the update ------------------------------------------------------------------------------------------


def epoch_minibatches(
    key: jax.Array, num_samples: int, minibatch_size: int, rows: np.ndarray | None = None
) -> tuple[Int[Array, "full size"], Int[Array, " rest"]]:
    """One epoch's minibatches: a random permutation of the units cut into full minibatches and the rest.

    A unit is one sample, or with `rows` (`[units, unit_length]` sample indices) one row: a whole episode.
    Shapes are static (`units // size` full minibatches of `size · unit_length` samples, the remainder
    after), so the epoch scans over the full ones and takes one more step on the rest: every sample once.
    """
    if rows is None:
        rows = np.arange(num_samples)[:, None]
    units, length = rows.shape
    size = min(minibatch_size, units)
    order = jnp.asarray(rows)[jax.random.permutation(key, units)]
    num_full = units // size
    return order[: num_full * size].reshape(num_full, size * length), order[num_full * size :].reshape(-1)


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
    """One Adam step of the policy on the surrogate and, for an "adam" value function, one of the value
    function on the same rows."""
    optimizers = make_optimizers(state.config)
    batch = jax.tree.map(lambda x: x[indices], samples)
    policy_step = gradient_step(
        functools.partial(policy_loss, state=state),
        optimizers.policy,
        learner.policy_params,
        learner.policy_opt_state,
        batch.policy,
    )
    metrics = {
        "train/policy_loss": policy_step.loss,
        "train/entropy": policy_step.aux.entropy,
        "train/approx_kl": policy_step.aux.approx_kl,
        "train/clip_fraction": policy_step.aux.clip_fraction,
        "train/policy_grad_norm": policy_step.grad_norm,
    }
    value_params, value_opt_state = learner.value_params, learner.value_opt_state
    if state.config.value_fit == "adam":
        value_step = gradient_step(
            functools.partial(pg.value_loss, network=state.value),
            optimizers.value,
            value_params,
            value_opt_state,
            batch.policy.obs,
            batch.value_target,
        )
        value_params, value_opt_state = value_step.params, value_step.opt_state
        metrics |= {"train/value_loss": value_step.loss, "train/value_grad_norm": value_step.grad_norm}
    learner = Learner(policy_step.params, value_params, policy_step.opt_state, value_opt_state)
    return learner, metrics


def epoch(
    state: State, samples: Samples, rows: np.ndarray | None, learner: Learner, key: jax.Array
) -> tuple[Learner, dict[str, jax.Array]]:
    """One pass over all samples in random minibatches; metrics are the mean over its steps."""
    num_samples = samples.value_target.shape[0]
    full, rest = epoch_minibatches(key, num_samples, state.config.minibatch_size, rows)
    step = functools.partial(minibatch_step, state, samples)
    learner, metrics = jax.lax.scan(step, learner, full)
    if rest.shape[0]:
        learner, last = step(learner, rest)
        metrics = jax.tree.map(lambda m, x: jnp.concatenate([m, x[None]]), metrics, last)
    return learner, jax.tree.map(jnp.mean, metrics)


def run_epochs(
    state: State, samples: Samples, rows: np.ndarray | None, key: jax.Array
) -> tuple[Learner, dict[str, jax.Array]]:
    """Up to `epochs` epochs; with `loss_tolerance` > 0 they stop after the first epoch that changes the
    full-batch loss by less than it (garage FirstOrderOptimizer). Metrics: means over the epochs run."""
    config = state.config
    learner = Learner(state.policy_params, state.value_params, state.policy_opt_state, state.value_opt_state)
    keys = jax.random.split(key, config.epochs)
    run_epoch = functools.partial(epoch, state, samples, rows)
    if not config.loss_tolerance:
        learner, metrics = jax.lax.scan(run_epoch, learner, keys)
        return learner, {**jax.tree.map(jnp.mean, metrics), "train/epochs": jnp.float32(config.epochs)}

    def full_loss(params: PyTree) -> jax.Array:
        return policy_loss(params, samples.policy, state=state)[0]

    shapes = jax.eval_shape(run_epoch, learner, keys[0])[1]
    skipped = jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), shapes)

    def body(carry, epoch_key):
        learner, last_loss, stopped = carry
        learner, metrics = jax.lax.cond(
            stopped, lambda: (learner, skipped), lambda: run_epoch(learner, epoch_key)
        )
        loss = full_loss(learner.policy_params)
        done = stopped | (jnp.abs(last_loss - loss) < config.loss_tolerance)
        return (learner, loss, done), (metrics, ~stopped)

    init = (learner, full_loss(learner.policy_params), jnp.array(False))
    (learner, _, _), (metrics, ran) = jax.lax.scan(body, init, keys)
    weights = ran.astype(jnp.float32)
    means = jax.tree.map(lambda m: jnp.sum(m * weights) / jnp.sum(weights), metrics)
    return learner, {**means, "train/epochs": jnp.sum(weights)}


# --- garage's GaussianMLPBaseline fit (PenaltyLBFGSOptimizer): `gaussian_baseline` -----------------------


def fit_baseline(state: State, obs: Float[Array, "n obs"], returns: Float[Array, " n"]) -> BaselineFit:
    """`gaussian_baseline.fit_baseline` of the state's baseline (network, log-std, last penalty) with the
    configured KL limit `value_max_kl`, on this iteration's samples."""
    return gaussian_baseline.fit_baseline(
        state.value_params,
        state.value_log_std,
        state.value_penalty,
        obs,
        returns,
        apply_fn=state.value.apply,
        max_kl=state.config.value_max_kl,
    )


def train_iteration(env: Env, state: State, key: jax.Array) -> tuple[State, dict[str, jax.Array]]:
    """Collect whole episodes in every env, estimate GAE advantages, run K epochs of minibatch PPO, then fit
    the baseline ("penalty_lbfgs"; an "adam" value function trains within the epochs)."""
    config = state.config
    collect_key, epochs_key = jax.random.split(key)
    traj = collect(env, state, collect_key)
    samples = make_samples(state, traj)
    rows = episode_rows(*traj.reward.shape) if config.minibatch_unit == "episode" else None
    learner, metrics = run_epochs(state, samples, rows, epochs_key)

    _, log_std = state.policy.apply(state.policy_params, samples.policy.obs)
    metrics["train/success"] = jnp.mean(jnp.any(traj.success, axis=1).astype(jnp.float32))
    metrics["train/episode_return"] = jnp.mean(jnp.sum(traj.reward, axis=1))
    metrics["train/action_std"] = jnp.mean(jnp.exp(log_std))
    state = state.replace(
        policy_params=learner.policy_params,
        value_params=learner.value_params,
        policy_opt_state=learner.policy_opt_state,
        value_opt_state=learner.value_opt_state,
        iteration=state.iteration + 1,
    )
    if config.value_fit == "penalty_lbfgs":
        fit = fit_baseline(state, samples.policy.obs, samples.value_target)
        state = state.replace(
            value_params=fit.value_params,
            value_log_std=fit.log_std,
            value_normalizer=fit.normalizer,
            value_penalty=fit.penalty,
        )
        metrics |= {
            "train/value_loss": fit.loss,
            "train/value_kl": fit.kl,
            "train/value_penalty": fit.penalty,
        }
    return state, {name: jnp.asarray(value, jnp.float32) for name, value in metrics.items()}

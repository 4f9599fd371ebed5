"""MAML-TRPO and MAML-PPO: Finn, Abbeel and Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of
Deep Networks" (ICML 2017, arXiv:1703.03400), Algorithm 3, in the Meta-World baselines' setup (garage's
MAMLTRPO / MAMLPPO).

One training iteration (Algorithm 3, one env of the batch = one task T_i, holding one goal for the block):
1. sample K trajectories D_i with the meta-parameters θ (no reset between the phases below: the env keeps
   its goal for `episodes_per_goal(config)` consecutive episodes);
2. inner step (eq. 1 with the policy-gradient loss of eq. 4): θ'_i = θ − α ∇_θ L_i(θ), L_i the REINFORCE
   loss −E[log π_θ(a|s) Â] on D_i, Â = discounted return minus garage's linear feature baseline fitted on
   D_i (GAE with λ = 1, no bootstrap, as garage); `inner_steps` > 1 repeats 1–2 with fresh episodes;
3. sample K trajectories D'_i with θ'_i;
4. outer step on Σ_i L'_i(θ'_i(θ)), differentiated through the inner step(s) (second-order MAML):
   "trpo" (the paper's meta-optimiser; garage MAMLTRPO) minimises the importance-sampled surrogate on D'_i
   subject to the mean KL between the post-adaptation policies before and after the step ≤ `max_kl`;
   "ppo" (garage MAMLPPO; Rothfuss et al., ProMP, ICLR 2019, arXiv:1810.06784) takes `ppo_epochs` Adam steps
   on the clipped surrogate of the same post-adaptation policies.

Like garage (and unlike ProMP/DiCE) the inner loss's data are held fixed, so the meta-gradient omits the
term from the pre-update sampling distribution's dependence on θ.

Meta-test (`mtrl.meta_evaluation.MetaAgent`): the context is the per-env policy parameters; `adapt` takes
`inner_steps` inner steps on the N adaptation episodes it receives (each step reuses those episodes).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct
from jaxtyping import Array, Bool, Float

from mtrl.gradients import gradient_step
from mtrl.onpolicy import RolloutState, Trajectory, discounted_returns, normalize, rollout
from mtrl.types import Env, EnvSpec, PyTree, TimeStep, Transition

from .policy_gradient import (
    GaussianPolicy,
    PolicyBatch,
    fit_linear_baseline,
    gaussian_entropy,
    gaussian_kl,
    gaussian_log_prob,
    linear_baseline_features,
    linear_baseline_values,
    ppo_loss,
    sample_gaussian,
    trpo_step,
)

OUTERS = ("trpo", "ppo")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config:
    """MAML with a vanilla-policy-gradient inner step and a TRPO (default) or PPO outer step."""

    outer: str = "trpo"
    """Meta-optimiser: "trpo" (Finn et al. 2017 §5.3; garage MAMLTRPO) or "ppo" (garage MAMLPPO)."""
    hidden_sizes: tuple[int, ...] = (100, 100)
    """Policy MLP widths (Finn et al. 2017 §5.3: two hidden layers of 100; tanh as garage's policy)."""
    init_std: float = 1.0
    """Initial action standard deviation (garage GaussianMLPPolicy init_std=1.0)."""
    inner_lr: float = 0.1
    """Inner SGD step size α (Finn et al. 2017 §5.3; garage MAMLPPO and ProMP configs: 0.1)."""
    inner_steps: int = 1
    """Inner policy-gradient steps, each on fresh episodes (Finn et al.; garage num_grad_updates=1)."""
    episodes_per_task: int = 10
    """Episodes per env and phase, K (garage maml_trpo_metaworld_ml10 rollouts_per_task=10)."""
    gamma: float = 0.99
    """Discount (garage MAMLTRPO/MAMLPPO discount=0.99)."""
    normalize_advantages: bool = True
    """Standardise advantages per env and phase (garage center_adv=True default; ProMP normalize_adv)."""
    baseline_reg: float = 1e-5
    """Ridge coefficient of the linear feature baseline (garage LinearFeatureBaseline reg_coeff=1e-5)."""
    max_kl: float = 0.01
    """TRPO trust region δ on the post-adaptation policies (garage MAMLTRPO max_kl_step=0.01)."""
    cg_iters: int = 10
    """Conjugate-gradient iterations (garage ConjugateGradientOptimizer cg_iters=10)."""
    cg_damping: float = 1e-5
    """Fisher-vector-product damping (garage ConjugateGradientOptimizer hvp_reg_coeff=1e-5)."""
    backtrack_ratio: float = 0.8
    """Line-search shrink factor (garage ConjugateGradientOptimizer backtrack_ratio=0.8)."""
    max_backtracks: int = 15
    """Line-search trials (garage ConjugateGradientOptimizer max_backtracks=15)."""
    outer_lr: float = 1e-3
    """PPO outer Adam learning rate (garage MAMLPPO outer_lr=1e-3; ProMP learning_rate=1e-3)."""
    clip_eps: float = 0.5
    """PPO outer clip range (garage MAMLPPO lr_clip_range=0.5; ProMP clip_eps=0.5)."""
    ppo_epochs: int = 5
    """Full-batch PPO outer Adam steps per iteration (ProMP max_epochs=5; garage takes 1)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden_sizes", tuple(self.hidden_sizes))
        if self.outer not in OUTERS:
            raise ValueError(f"unknown outer {self.outer!r}; valid: {', '.join(OUTERS)}")
        if any(size < 1 for size in self.hidden_sizes):
            raise ValueError(f"hidden_sizes must be positive widths, got {self.hidden_sizes}")
        for name in ("inner_steps", "episodes_per_task", "cg_iters", "max_backtracks", "ppo_epochs"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        for name in ("init_std", "inner_lr", "max_kl", "outer_lr", "clip_eps"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("baseline_reg", "cg_damping"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.gamma <= 1:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma}")
        if not 0 < self.backtrack_ratio < 1:
            raise ValueError(f"backtrack_ratio must be in (0, 1), got {self.backtrack_ratio}")


@struct.dataclass
class State:
    """Meta-parameters, the PPO outer optimiser's state (() for TRPO) and the iteration count."""

    params: PyTree
    opt_state: PyTree
    iteration: jax.Array
    config: Config = struct.field(pytree_node=False)
    policy: GaussianPolicy = struct.field(pytree_node=False)


def make_policy(spec: EnvSpec, config: Config) -> GaussianPolicy:
    return GaussianPolicy(config.hidden_sizes, spec.action_size, config.init_std)


def make_optimizer(config: Config) -> optax.GradientTransformation:
    """Adam for the PPO outer step; eps 1e-5 as garage's MAML meta-optimiser."""
    return optax.adam(config.outer_lr, eps=1e-5)


def init(key: jax.Array, spec: EnvSpec, config: Config) -> State:
    """Fresh meta-parameters for the env described by `spec`."""
    policy = make_policy(spec, config)
    params = policy.init(key, jnp.zeros((1, spec.obs_size)))
    opt_state = make_optimizer(config).init(params) if config.outer == "ppo" else ()
    return State(params, opt_state, jnp.zeros((), jnp.int32), config, policy)


def episodes_per_goal(config: Config) -> int:
    """Each env keeps its goal for the whole block: pre-adaptation phase(s) and the post-adaptation one."""
    return (config.inner_steps + 1) * config.episodes_per_task


def vector_steps_per_iteration(spec: EnvSpec, config: Config) -> int:
    return episodes_per_goal(config) * spec.episode_length


# --- inner loop (eq. 1 with the REINFORCE loss of eq. 4) ------------------------------------------------


def inner_loss(params: PyTree, batch: PolicyBatch, *, policy: GaussianPolicy) -> Float[Array, ""]:
    """The vanilla policy-gradient loss L_i(θ) = −E[log π_θ(a|s) Â] of one env's episodes."""
    mean, log_std = policy.apply(params, batch.obs)
    return -jnp.mean(gaussian_log_prob(mean, log_std, batch.action) * batch.advantage)


def inner_step(params: PyTree, batch: PolicyBatch, *, policy: GaussianPolicy, lr: float) -> PyTree:
    """θ' = θ − α ∇_θ L_i(θ) (eq. 1); differentiable in θ, so the outer step sees through it."""
    grads = jax.grad(inner_loss)(params, batch, policy=policy)
    return jax.tree.map(lambda p, g: p - lr * g, params, grads)


def adapt_params(params: PyTree, batches: PolicyBatch, *, policy: GaussianPolicy, lr: float) -> PyTree:
    """One env's adapted parameters: an inner step per leading entry of `batches` ([steps, samples])."""
    for k in range(batches.advantage.shape[0]):
        params = inner_step(params, jax.tree.map(lambda x, k=k: x[k], batches), policy=policy, lr=lr)
    return params


def advantages(
    obs: Float[Array, "samples obs"],
    reward: Float[Array, " samples"],
    terminated: Bool[Array, " samples"],
    truncated: Bool[Array, " samples"],
    time: Float[Array, " samples"],
    config: Config,
) -> Float[Array, " samples"]:
    """One env's Â = G − b(s, t): Monte-Carlo discounted returns (λ = 1, cut at episode ends, no
    bootstrap, as garage) minus the linear feature baseline refitted on these very episodes."""
    returns = discounted_returns(reward, terminated, truncated, gamma=config.gamma)
    features = linear_baseline_features(obs, time)
    weights = fit_linear_baseline(features, returns, config.baseline_reg)
    adv = returns - linear_baseline_values(weights, features)
    return normalize(adv) if config.normalize_advantages else adv


def policy_batch(traj: Trajectory, episode_length: int, config: Config) -> PolicyBatch:
    """A time-major `[steps, envs]` block of whole episodes as a per-env batch `[envs, steps]`."""
    time = jnp.arange(traj.reward.shape[0]) % episode_length
    adv = jax.vmap(advantages, in_axes=(1, 1, 1, 1, None, None), out_axes=1)(
        traj.obs, traj.reward, traj.terminated, traj.truncated, time, config
    )
    batch = PolicyBatch(traj.obs, traj.action, adv, traj.log_prob)
    return jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), batch)


# --- outer loss (Algorithm 3, line 10) -------------------------------------------------------------------


def adapted_dist(
    params: PyTree, inner: PolicyBatch, obs: Float[Array, "envs samples obs"], *, policy, lr
) -> tuple[jax.Array, jax.Array]:
    """Mean and log-std of every env's adapted policy θ'_i(θ) on `obs`: `[envs, samples, act]`."""

    def one_env(batches: PolicyBatch, env_obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        return policy.apply(adapt_params(params, batches, policy=policy, lr=lr), env_obs)

    return jax.vmap(one_env)(inner, obs)


def meta_loss(params: PyTree, inner: PolicyBatch, outer: PolicyBatch, *, policy, lr) -> Float[Array, ""]:
    """TRPO's surrogate of the post-adaptation policies, −mean_i E[π_θ'_i(a|s)/π_old'_i(a|s) Â] on D'_i;
    `inner` is `[envs, inner_steps, samples]`, `outer` `[envs, samples]`."""
    mean, log_std = adapted_dist(params, inner, outer.obs, policy=policy, lr=lr)
    ratio = jnp.exp(gaussian_log_prob(mean, log_std, outer.action) - outer.old_log_prob)
    return -jnp.mean(ratio * outer.advantage)


def meta_kl(params, inner, obs, old_mean, old_log_std, *, policy, lr) -> Float[Array, ""]:
    """Mean over envs and states of KL(π_old'_i ‖ π_θ'_i): the trust region on post-adaptation policies."""
    mean, log_std = adapted_dist(params, inner, obs, policy=policy, lr=lr)
    return jnp.mean(gaussian_kl(old_mean, old_log_std, mean, log_std))


def meta_ppo_loss(params, inner, outer, *, policy, lr, clip_eps) -> tuple[jax.Array, Any]:
    """PPO's clipped loss of each env's adapted policy on its post-adaptation episodes, mean over envs."""
    adapted = jax.vmap(lambda b: adapt_params(params, b, policy=policy, lr=lr))(inner)

    def one_env(env_params: PyTree, batch: PolicyBatch) -> tuple[jax.Array, Any]:
        return ppo_loss(env_params, batch, dist_fn=policy.apply, clip_eps=clip_eps, entropy_coef=0.0)

    losses, aux = jax.vmap(one_env)(adapted, outer)
    return losses.mean(), jax.tree.map(jnp.mean, aux)


def outer_update(state: State, inner: PolicyBatch, outer: PolicyBatch) -> tuple[State, dict[str, jax.Array]]:
    """The meta-update of θ from the inner and post-adaptation batches (TRPO or PPO)."""
    cfg, policy = state.config, state.policy
    kw = dict(policy=policy, lr=cfg.inner_lr)
    loss_fn = functools.partial(meta_loss, inner=inner, outer=outer, **kw)
    loss_before = loss_fn(state.params)
    if cfg.outer == "trpo":
        old_mean, old_log_std = jax.lax.stop_gradient(adapted_dist(state.params, inner, outer.obs, **kw))
        kl_fn = functools.partial(
            meta_kl, inner=inner, obs=outer.obs, old_mean=old_mean, old_log_std=old_log_std, **kw
        )
        params, info = trpo_step(
            state.params,
            loss_fn,
            kl_fn,
            max_kl=cfg.max_kl,
            cg_iters=cfg.cg_iters,
            damping=cfg.cg_damping,
            backtrack_ratio=cfg.backtrack_ratio,
            max_backtracks=cfg.max_backtracks,
        )
        metrics = {"train/kl": info.kl, "train/step_fraction": info.step_fraction}
        return state.replace(params=params), {**metrics, "train/surrogate_before": loss_before}

    optimizer = make_optimizer(cfg)
    ppo_fn = functools.partial(meta_ppo_loss, clip_eps=cfg.clip_eps, **kw)

    def epoch(carry: tuple[PyTree, PyTree], _: None) -> tuple[tuple[PyTree, PyTree], Any]:
        step = gradient_step(ppo_fn, optimizer, *carry, inner, outer)
        return (step.params, step.opt_state), (step.loss, step.aux)

    (params, opt_state), (losses, aux) = jax.lax.scan(
        epoch, (state.params, state.opt_state), length=cfg.ppo_epochs
    )
    metrics = {
        "train/ppo_loss": losses[0],
        "train/approx_kl": aux.approx_kl[-1],
        "train/clip_fraction": aux.clip_fraction[-1],
        "train/surrogate_before": loss_before,
    }
    return state.replace(params=params, opt_state=opt_state), metrics


# --- one training iteration --------------------------------------------------------------------------------


def sample_per_env(policy: GaussianPolicy, params: PyTree, obs, task_id, key):
    """The rollout `policy_fn` with one parameter set per env (leading axis of `params`)."""
    del task_id
    mean, log_std = jax.vmap(policy.apply)(params, obs)
    return sample_gaussian(mean, log_std, key)


def broadcast_params(params: PyTree, num_envs: int) -> PyTree:
    return jax.tree.map(lambda x: jnp.broadcast_to(x, (num_envs, *x.shape)), params)


def train_iteration(env: Env, state: State, key: jax.Array) -> tuple[State, dict[str, jax.Array]]:
    """Algorithm 3 once over a meta-batch of `spec.num_envs` tasks (one reset: goals hold for the block)."""
    cfg, spec, policy = state.config, env.spec, state.policy
    T, steps = spec.episode_length, cfg.episodes_per_task * spec.episode_length
    reset_key, key = jax.random.split(key)
    env_state, timestep = env.reset(reset_key)
    carry = RolloutState(env_state, timestep, key)
    policy_fn = functools.partial(sample_per_env, policy)
    params = broadcast_params(state.params, spec.num_envs)
    phases, batches = [], []
    for k in range(cfg.inner_steps + 1):
        carry, traj = rollout(env, policy_fn, params, carry, steps)
        phases.append(traj)
        batches.append(policy_batch(traj, T, cfg))
        if k < cfg.inner_steps:  # θ^(k+1)_i from θ^(k)_i and D^(k)_i, per env
            step_fn = functools.partial(inner_step, policy=policy, lr=cfg.inner_lr)
            params = jax.vmap(step_fn)(params, batches[-1])
    inner = jax.tree.map(lambda *x: jnp.stack(x, axis=1), *batches[:-1])  # [envs, inner_steps, samples]
    new_state, metrics = outer_update(state, inner, batches[-1])
    new_state = new_state.replace(iteration=state.iteration + 1)

    def success(traj: Trajectory) -> jax.Array:
        return traj.success.reshape(cfg.episodes_per_task, T, -1).any(axis=1).mean()

    def episode_return(traj: Trajectory) -> jax.Array:
        return traj.reward.sum() / (cfg.episodes_per_task * spec.num_envs)

    _, log_std = policy.apply(state.params, jnp.zeros((1, spec.obs_size)))
    metrics = {
        **metrics,
        "train/success": jnp.mean(jnp.stack([success(t) for t in phases])),
        "train/episode_return": jnp.mean(jnp.stack([episode_return(t) for t in phases])),
        "train/pre_adaptation_success": success(phases[0]),
        "train/post_adaptation_success": success(phases[-1]),
        "train/pre_adaptation_return": episode_return(phases[0]),
        "train/post_adaptation_return": episode_return(phases[-1]),
        "train/surrogate_after": meta_loss(
            new_state.params, inner, batches[-1], policy=policy, lr=cfg.inner_lr
        ),
        "train/entropy": gaussian_entropy(log_std).mean(),
    }
    return new_state, {name: jnp.asarray(v, jnp.float32) for name, v in metrics.items()}


# --- meta-test (mtrl.meta_evaluation.MetaAgent) -------------------------------------------------------------


def init_adaptation(state: State, spec: EnvSpec, key: jax.Array) -> PyTree:
    """The context: the meta-parameters, one copy per env."""
    del key
    return broadcast_params(state.params, spec.num_envs)


def act(
    state: State, context: PyTree, step: TimeStep, key: jax.Array, deterministic: bool
) -> tuple[jax.Array, PyTree]:
    """Sample from each env's current parameters while adapting; their mean on scored episodes."""
    mean, log_std = jax.vmap(state.policy.apply)(context, step.obs)
    action = mean if deterministic else sample_gaussian(mean, log_std, key)[0]
    return action, context


def adapt(state: State, context: PyTree, episodes: Transition, key: jax.Array) -> PyTree:
    """`inner_steps` inner steps per env on its N adaptation episodes (`[envs, N, T]`, whole episodes)."""
    del key
    cfg = state.config
    envs, n, T = episodes.reward.shape
    flat = jax.tree.map(lambda x: x.reshape(envs, n * T, *x.shape[3:]), episodes)
    time = jnp.arange(n * T) % T
    truncated = jnp.broadcast_to(time == T - 1, (envs, n * T))
    adv = jax.vmap(advantages, in_axes=(0, 0, 0, 0, None, None))(
        flat.obs, flat.reward, flat.terminated.astype(bool), truncated, time, cfg
    )
    batch = PolicyBatch(flat.obs, flat.action, adv, jnp.zeros_like(adv))
    step_fn = functools.partial(inner_step, policy=state.policy, lr=cfg.inner_lr)
    for _ in range(cfg.inner_steps):
        context = jax.vmap(step_fn)(context, batch)
    return context

"""MAML-TRPO and MAML-PPO: Finn, Abbeel and Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of
Deep Networks" (ICML 2017, arXiv:1703.03400), Algorithm 3.

Two recipes. `Config()` is the one behind the Meta-World paper's MAML numbers (Yu et al., CoRL 2019,
arXiv:1910.10897, results re-run with garage's `merge-mw-v2-examples` branch, files
`metaworld_examples/maml_trpo_metaworld_ml{10,45}.py` and `src/garage/torch/algos/maml*.py`, cited below as
"garage MW"); `maml_paper_config()` is the MAML paper's own (its code, cbfinn/maml_rl, `maml_examples/` and
`sandbox/rocky/tf/`). They differ in the policy (garage MW: 128×128 tanh trunk, tanh-squashed mean and a
tanh log-std head clipped to std ∈ [0.5, 1.5]; MAML: 100×100 ReLU, linear mean, state-independent std),
the inner step (garage MW: α = 1e-4 on raw advantages; MAML: α = 0.1 on standardised advantages), the
episodes per task and phase, and TRPO's objective (garage MW: −E[log π_θ'(a|s) Â], its VPG loss; MAML:
the likelihood-ratio surrogate). garage MW also sets `entropy_method='max', policy_ent_coeff=5e-5`, which
never takes effect: its MAML computes every loss with VPG's `_compute_loss` (garage maml.py:214, 263),
which adds entropy only for the 'regularized' method (vpg.py:341), while 'max' acts only in
`VPG._train_once` (vpg.py:154-156), which MAML never calls. So neither recipe has an entropy term here.

One training iteration (Algorithm 3, one env of the batch = one task T_i, holding one goal for the block):
1. sample K trajectories D_i with the meta-parameters θ (no reset between the phases below: the env keeps
   its goal for `episodes_per_goal(config)` consecutive episodes);
2. inner step (eq. 1 with the policy-gradient loss of eq. 4): θ'_i = θ − α ∇_θ L_i(θ), L_i the REINFORCE
   loss −E[log π_θ(a|s) Â] on D_i, Â = discounted return minus the linear feature baseline fitted on D_i
   (GAE with λ = 1, no bootstrap, as both codes); `inner_steps` > 1 repeats 1–2 with fresh episodes;
3. sample K trajectories D'_i with θ'_i;
4. outer step on Σ_i L'_i(θ'_i(θ)), differentiated through the inner step(s) (second-order MAML):
   "trpo" (the paper's meta-optimiser; garage MAMLTRPO) minimises `trpo_objective` on D'_i subject to the
   mean KL between the post-adaptation policies before and after the step ≤ `max_kl`;
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
from mtrl.onpolicy import RolloutState, Trajectory, collect_steps, discounted_returns, normalize
from mtrl.types import AgentTraits, Env, EnvSpec, PyTree, TimeStep, Transition

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

TRAITS = AgentTraits(loop="episodic", meta=True)
"""What the wiring reads about this agent (`mtrl.types.AgentTraits`)."""

OUTERS = ("trpo", "ppo")
ACTIVATIONS = ("tanh", "relu")
TRPO_OBJECTIVES = ("log_likelihood", "likelihood_ratio")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config:
    """MAML with a vanilla-policy-gradient inner step and a TRPO (default) or PPO outer step.

    The defaults are the Meta-World paper's ML10 recipe; `maml_paper_config()` gives the MAML paper's.
    Sources, file:line: "MW10"/"MW45" = garage@merge-mw-v2-examples
    metaworld_examples/maml_trpo_metaworld_ml{10,45}.py; "garage" = that branch's src/garage/; "cheetah" =
    cbfinn/maml_rl maml_examples/cluster_maml_trpo_cheetah.py; "mamlpol" = maml_rl
    sandbox/rocky/tf/policies/maml_minimal_gauss_mlp_policy.py; "polopt" = maml_rl
    sandbox/rocky/tf/algos/batch_maml_polopt.py.
    """

    outer: str = "trpo"
    """Meta-optimiser: "trpo" (MW10:82 MAMLTRPO; Finn et al. §5.3) or "ppo" (garage MAMLPPO)."""
    hidden_sizes: tuple[int, ...] = (128, 128)
    """Policy MLP widths (MW10:62 (128, 128); cheetah:68 (100, 100))."""
    activation: str = "tanh"
    """Hidden nonlinearity, "tanh" or "relu" (MW10:63 tanh; cheetah:67 relu)."""
    output_tanh: bool = True
    """tanh on the mean and log-std heads (MW10:64 output_nonlinearity=tanh; mamlpol:41 identity)."""
    std_head: bool = True
    """Log-std from a head on the shared trunk (MW10:67 'share_mean_std'; mamlpol:110 a parameter)."""
    min_std: float | None = 0.5
    """Lower clip of the action std, None for none (MW10:65 0.5; mamlpol:38 1e-6)."""
    max_std: float | None = 1.5
    """Upper clip of the action std, None for none (MW10:66 1.5; mamlpol: none)."""
    init_std: float = 1.0
    """Initial action std (garage torch GaussianMLPPolicy init_std=1.0; mamlpol:34 1.0)."""
    inner_lr: float = 1e-4
    """Inner SGD step size α (MW10:27 1e-4; cheetah:24 fast_lr 0.1)."""
    inner_steps: int = 1
    """Inner policy-gradient steps, each on fresh episodes (MW10:92 num_grad_updates=1; cheetah:52 1)."""
    episodes_per_task: int = 10
    """Episodes per env and phase, K (MW10:25 10; MW45:25 20; cheetah:32 fast_batch_size 20)."""
    gamma: float = 0.99
    """Discount (MW10:89 0.99; polopt:39 0.99)."""
    normalize_advantages: bool = False
    """Standardise Â per env and phase by mean and std (MW10:97 center_adv=False; polopt:43 True)."""
    baseline_reg: float = 1e-5
    """Ridge coefficient of the linear feature baseline (garage linear_feature_baseline.py:17 1e-5)."""
    trpo_objective: str = "log_likelihood"
    """TRPO loss: −E[log π Â] (garage maml.py:263 via vpg.py:469) or "likelihood_ratio" (maml_npo.py:121)."""
    max_kl: float = 0.01
    """TRPO trust region δ on the adapted policies (garage maml_trpo.py:60 0.01; cheetah:28 0.01)."""
    cg_iters: int = 10
    """Conjugate-gradient iterations (garage torch conjugate_gradient_optimizer.py:128 cg_iters=10)."""
    cg_damping: float = 1e-5
    """Fisher-vector-product damping (garage torch conjugate_gradient_optimizer.py:131 1e-5)."""
    backtrack_ratio: float = 0.8
    """Line-search shrink factor (garage torch conjugate_gradient_optimizer.py:130 0.8)."""
    max_backtracks: int = 15
    """Line-search trials (garage torch conjugate_gradient_optimizer.py:129 15)."""
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
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; valid: {', '.join(ACTIVATIONS)}")
        if self.trpo_objective not in TRPO_OBJECTIVES:
            raise ValueError(
                f"unknown trpo_objective {self.trpo_objective!r}; valid: {', '.join(TRPO_OBJECTIVES)}"
            )
        if any(size < 1 for size in self.hidden_sizes):
            raise ValueError(f"hidden_sizes must be positive widths, got {self.hidden_sizes}")
        for name in ("inner_steps", "episodes_per_task", "cg_iters", "max_backtracks", "ppo_epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        for name in ("init_std", "inner_lr", "max_kl", "outer_lr", "clip_eps"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        check_std_bounds(self.min_std, self.max_std)
        for name in ("baseline_reg", "cg_damping"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.gamma <= 1:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma}")
        if not 0 < self.backtrack_ratio < 1:
            raise ValueError(f"backtrack_ratio must be in (0, 1), got {self.backtrack_ratio}")


def check_std_bounds(min_std: float | None, max_std: float | None) -> None:
    """One-line errors for std clip bounds: each None or > 0, and min_std < max_std when both are set."""
    for name, value in (("min_std", min_std), ("max_std", max_std)):
        if value is not None and not value > 0:
            raise ValueError(f"{name} must be None or > 0, got {value}")
    if min_std is not None and max_std is not None and not min_std < max_std:
        raise ValueError(f"min_std must be < max_std, got min_std={min_std}, max_std={max_std}")


def maml_paper_config(**overrides: Any) -> Config:
    """The MAML paper's recipe (cbfinn/maml_rl, the code behind Finn et al. 2017 §5.3): a 100×100 ReLU
    policy with a linear mean and a state-independent std (floor 1e-6, no ceiling), inner lr 0.1 on
    standardised advantages, 20 episodes per task and phase, TRPO on the likelihood-ratio surrogate.
    The rest (TRPO δ = 0.01, γ = 0.99, λ = 1, linear baseline, one inner step) is shared with `Config()`.
    Its meta-batch of 40 tasks (cluster_maml_trpo_cheetah.py:36) is the env's business (`envs_per_task`)."""
    recipe = dict(
        hidden_sizes=(100, 100),
        activation="relu",
        output_tanh=False,
        std_head=False,
        min_std=1e-6,
        max_std=None,
        inner_lr=0.1,
        episodes_per_task=20,
        normalize_advantages=True,
        trpo_objective="likelihood_ratio",
    )
    return Config(**{**recipe, **overrides})


@struct.dataclass
class State:
    """Meta-parameters, the PPO outer optimiser's state (() for TRPO) and the iteration count."""

    params: PyTree
    opt_state: PyTree
    iteration: jax.Array
    config: Config = struct.field(pytree_node=False)
    policy: GaussianPolicy = struct.field(pytree_node=False)


def make_policy(spec: EnvSpec, config: Config) -> GaussianPolicy:
    """The configured Gaussian policy, with Glorot-uniform kernels as both recipes (garage xavier_uniform_,
    maml_rl xavier_initializer)."""
    return GaussianPolicy(
        config.hidden_sizes,
        spec.action_size,
        config.init_std,
        activation=config.activation,
        std_head=config.std_head,
        output_tanh=config.output_tanh,
        min_std=config.min_std,
        max_std=config.max_std,
        glorot_init=True,
    )


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


def check_meta_protocol(config: Config, adaptation_episodes: int) -> None:
    """Any meta-test length works: `adapt` takes its inner steps on however many episodes it is given."""
    del config, adaptation_episodes


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


def meta_loss(
    params: PyTree,
    inner: PolicyBatch,
    outer: PolicyBatch,
    *,
    policy,
    lr,
    objective: str = "likelihood_ratio",
) -> Float[Array, ""]:
    """TRPO's loss of the post-adaptation policies on D'_i, mean over envs; `inner` is
    `[envs, inner_steps, samples]`, `outer` `[envs, samples]`. "likelihood_ratio": the surrogate
    −mean_i E[π_θ'_i(a|s)/π_old'_i(a|s) Â]; "log_likelihood": −mean_i E[log π_θ'_i(a|s) Â] (garage VPG).
    Both have the same gradient where θ'_i(θ) is the behaviour policy; they differ off it, where the line
    search evaluates them."""
    mean, log_std = adapted_dist(params, inner, outer.obs, policy=policy, lr=lr)
    log_prob = gaussian_log_prob(mean, log_std, outer.action)
    if objective == "log_likelihood":
        return -jnp.mean(log_prob * outer.advantage)
    if objective != "likelihood_ratio":
        raise ValueError(f"unknown objective {objective!r}; valid: {', '.join(TRPO_OBJECTIVES)}")
    return -jnp.mean(jnp.exp(log_prob - outer.old_log_prob) * outer.advantage)


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
    loss_fn = functools.partial(meta_loss, inner=inner, outer=outer, objective=cfg.trpo_objective, **kw)
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
        carry, traj = collect_steps(env, policy_fn, params, carry, steps)
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

    # the pre-adaptation policy's entropy on the states it visited (the std may depend on the state)
    _, log_std = policy.apply(state.params, phases[0].obs.reshape(-1, spec.obs_size))
    metrics = {
        **metrics,
        "train/success": jnp.mean(jnp.stack([success(t) for t in phases])),
        "train/episode_return": jnp.mean(jnp.stack([episode_return(t) for t in phases])),
        "train/pre_adaptation_success": success(phases[0]),
        "train/post_adaptation_success": success(phases[-1]),
        "train/pre_adaptation_return": episode_return(phases[0]),
        "train/post_adaptation_return": episode_return(phases[-1]),
        "train/surrogate_after": meta_loss(
            new_state.params, inner, batches[-1], policy=policy, lr=cfg.inner_lr, objective=cfg.trpo_objective
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

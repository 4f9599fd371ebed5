"""MOORE-PPO, MoE-PPO and MT-PPO on MiniGrid: the MOORE paper's PPO agents, as its authors ran them.

Hendawy et al., "Multi-Task Reinforcement Learning with Mixture of Orthogonal Experts" (ICLR 2024,
arXiv:2311.11385), MiniGrid experiments; the recipe is the authors' `run_minigrid_ppo_mt.py` and
`run/minigrid/multi_task/*.sh` with their `MTPPO` (moore/algorithms/actor_critic/deep_actor_critic/mtppo.py,
on mushroom-rl 1.9.2) and the networks of `agents.minigrid_networks`. One `train_iteration` is their
`core.learn(n_steps=2000, n_steps_per_fit=2000)` followed by one `fit`:

1. reset every env and run the Boltzmann (softmax) policy for `steps_per_iteration` vector steps: each
   task's env steps once per vector step (2,000 steps per task);
2. GAE (λ = 0.95, γ = 0.99) on V of the critic, bootstrapping from V(s') at time limits and at the end of
   the block, cut at terminations; value targets Â + V(s);
3. advantages standardised per task (`(Â − mean) / (std + 1e-8)` over that task's samples);
4. the critic takes ONE Adam step on the mean squared error over all samples (mushroom-rl's
   `TorchApproximator.fit` with its defaults `batch_size=0`, i.e. the whole batch, and the authors'
   `n_epochs=1`);
5. the actor takes 8 epochs of Adam steps on PPO's clipped surrogate minus 0.01 · entropy, over shuffled
   minibatches of 256 × tasks samples (the last one of each epoch smaller).

The three agents differ only in the torso of both actor and critic: `moore` (k CNN experts, Gram-Schmidt,
task-weighted sum, tanh), `moe` (the same without Gram-Schmidt) and `shared` (one CNN: the MT-PPO
baseline); `heads` is "multi" (one head per task) or "single" (one head on the feature and the one-hot).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import optax
from flax import struct
from jaxtyping import Array, Float, Int

from mtrl import onpolicy
from mtrl.gradients import gradient_step
from mtrl.types import AgentTraits, Env, EnvSpec, PyTree

from . import policy_gradient as pg
from .gradient_methods.core import check_positive
from .minigrid_networks import MiniGridNetwork
from .mt_ppo import epoch_minibatches

TRAITS = AgentTraits(loop="episodic", discrete_actions=True, expert_transfer=True)
"""What the wiring reads about this agent (`mtrl.types.AgentTraits`)."""

ADVANTAGE_NORMALIZATION = ("per_task", "batch", "none")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config:
    """The authors' MiniGrid PPO (run/minigrid/multi_task/*.sh and run_minigrid_ppo_mt.py)."""

    torso: str = "moore"
    """"moore" (orthogonal experts), "moe" (experts, no Gram-Schmidt) or "shared" (one CNN: MT-PPO)."""
    heads: str = "multi"
    """"multi": a Linear-tanh-Linear head per task; "single": one head on [feature, one-hot]."""
    num_experts: int = 2
    """--n_experts: 2, 3, 4 for MT3, MT5, MT7 in the paper."""
    head_hidden: int = 128
    """--actor_n_features / --critic_n_features 128."""
    conv: str = "patches"
    """"patches" (2×2 patches + matmul, fast on CPU) or "lax" (XLA's convolution, for GPUs); same maths."""
    authors_init: bool = True
    """PyTorch's default initialisation, as the authors' networks start; False: Flax's defaults."""
    steps_per_iteration: int = 2000
    """Vector steps per fit (--n_steps 2000 with --train_frequency 2000): 2,000 env steps per task."""
    epochs: int = 8
    """Policy epochs per fit (n_epochs_policy=8)."""
    minibatch_per_task: int = 256
    """--batch_size 256; the minibatch is 256 × tasks samples (batch_size * n_contexts)."""
    clip_eps: float = 0.2
    """eps_ppo 0.2."""
    entropy_coef: float = 0.01
    """ent_coeff 0.01 (on the mean entropy of the minibatch)."""
    gamma: float = 0.99
    """--gamma 0.99."""
    gae_lambda: float = 0.95
    """lam 0.95."""
    actor_lr: float = 1e-3
    """--lr_actor 1e-3 (Adam, betas (0.9, 0.999))."""
    critic_lr: float = 1e-3
    """--lr_critic 1e-3 (Adam)."""
    critic_steps: int = 1
    """Full-batch Adam steps of the critic per fit (mushroom-rl: n_epochs=1, batch_size=0 → 1)."""
    advantage_normalization: str = "per_task"
    """Standardise advantages "per_task" (the authors), over the whole "batch", or "none"."""
    frozen_experts: bool = False
    """The expert CNNs get no updates: the authors' transfer runs load a source run's experts and set
    `requires_grad=False` on them (`load_shared_backbone`); task weights and heads still train."""
    experts_from: str | None = None
    """Transfer: the run directory whose final expert CNNs (actor's and critic's) this run starts from; seed
    s of this run takes seed s of that run, as the authors' run i loads source run i. The app loads them
    (`mtrl.app.transfer`); the agent only receives them (`with_experts`)."""

    def __post_init__(self) -> None:
        for name, value in (("torso", ("moore", "moe", "shared")), ("heads", ("multi", "single"))):
            if getattr(self, name) not in value:
                raise ValueError(f"unknown {name} {getattr(self, name)!r}; valid: {', '.join(value)}")
        if self.advantage_normalization not in ADVANTAGE_NORMALIZATION:
            raise ValueError(
                f"unknown advantage_normalization {self.advantage_normalization!r}; "
                f"valid: {', '.join(ADVANTAGE_NORMALIZATION)}"
            )
        for name in ("num_experts", "head_hidden", "steps_per_iteration", "epochs", "minibatch_per_task"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if (
            isinstance(self.critic_steps, bool)
            or not isinstance(self.critic_steps, int)
            or self.critic_steps < 0
        ):
            raise ValueError(f"critic_steps must be an integer >= 0, got {self.critic_steps!r}")
        for name in ("frozen_experts", "experts_from"):
            if getattr(self, name) not in (False, None) and self.torso == "shared":
                raise ValueError(f"{name} needs experts: torso 'shared' has none; valid torsos: moore, moe")
        check_positive("clip_eps", self.clip_eps)
        check_positive("entropy_coef", self.entropy_coef, allow_zero=True)
        check_positive("actor_lr", self.actor_lr, allow_zero=True)
        check_positive("critic_lr", self.critic_lr, allow_zero=True)
        for name in ("gamma", "gae_lambda"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")


@struct.dataclass
class State:
    """Actor and critic parameters with their Adam states, and the fits done."""

    actor_params: PyTree
    critic_params: PyTree
    actor_opt_state: optax.OptState
    critic_opt_state: optax.OptState
    iteration: Int[Array, ""]
    config: Config = struct.field(pytree_node=False)
    actor: MiniGridNetwork = struct.field(pytree_node=False)
    critic: MiniGridNetwork = struct.field(pytree_node=False)


def make_networks(spec: EnvSpec, config: Config) -> tuple[MiniGridNetwork, MiniGridNetwork]:
    """Actor (one logit per action) and critic (one value), the same architecture with its own weights."""
    if not spec.discrete_actions:
        raise ValueError(
            f"moore_ppo needs a discrete-action env (MiniGrid); {spec.name} has continuous actions"
        )
    network = functools.partial(
        MiniGridNetwork,
        num_tasks=spec.num_tasks,
        torso=config.torso,
        heads=config.heads,
        num_experts=config.num_experts,
        head_hidden=config.head_hidden,
        conv=config.conv,
        authors_init=config.authors_init,
    )
    return network(outputs=spec.action_size), network(outputs=1)


def init(key: jax.Array, spec: EnvSpec, config: Config) -> State:
    actor, critic = make_networks(spec, config)
    actor_key, critic_key = jax.random.split(key)
    obs = jnp.zeros((1, spec.obs_size), jnp.float32)
    task = jnp.zeros((1,), jnp.int32)
    actor_params = actor.init(actor_key, obs, task)
    critic_params = critic.init(critic_key, obs, task)
    return State(
        actor_params=actor_params,
        critic_params=critic_params,
        actor_opt_state=make_optimizer(config, config.actor_lr).init(actor_params),
        critic_opt_state=make_optimizer(config, config.critic_lr).init(critic_params),
        iteration=jnp.zeros((), jnp.int32),
        config=config,
        actor=actor,
        critic=critic,
    )


EXPERTS = "experts"
"""The expert CNNs' subtree in the actor's and critic's `params` (`MiniGridNetwork`)."""


def make_optimizer(config: Config, learning_rate: float) -> optax.GradientTransformation:
    """Adam (betas 0.9, 0.999, as torch's), with zero updates for the expert CNNs when they are frozen."""
    adam = optax.adam(learning_rate)
    if not config.frozen_experts:
        return adam

    def labels(params: PyTree) -> PyTree:
        return {
            "params": {
                name: jax.tree.map(lambda _, n=name: "frozen" if n == EXPERTS else "train", subtree)
                for name, subtree in params["params"].items()
            }
        }

    return optax.multi_transform({"train": adam, "frozen": optax.set_to_zero()}, labels)


def without_expert_gradients(params: PyTree, config: Config) -> PyTree:
    """Frozen experts enter the losses through `stop_gradient`: their gradients (most of the backward pass)
    are never computed, and the optimiser's zero updates keep them fixed."""
    if not config.frozen_experts:
        return params
    return {"params": {**params["params"], EXPERTS: jax.lax.stop_gradient(params["params"][EXPERTS])}}


def with_experts(state: State, actor_experts: PyTree, critic_experts: PyTree) -> State:
    """`state` with its actor's and critic's expert CNNs replaced (transfer), everything else as it was.

    The optimiser states stay valid: they hold per-parameter moments of unchanged shapes (zeros at init)."""
    for name, params, experts in (
        ("actor", state.actor_params, actor_experts),
        ("critic", state.critic_params, critic_experts),
    ):
        mine = jax.tree.map(jnp.shape, params["params"].get(EXPERTS))
        theirs = jax.tree.map(jnp.shape, experts)
        if mine != theirs:
            raise ValueError(
                f"the source {name} experts do not fit this network (shapes {theirs} vs {mine}): "
                "torso and num_experts must match the source run's"
            )
    replace = lambda params, experts: {"params": {**params["params"], EXPERTS: experts}}  # noqa: E731
    return state.replace(
        actor_params=replace(state.actor_params, actor_experts),
        critic_params=replace(state.critic_params, critic_experts),
    )


def experts(state: State) -> tuple[PyTree, PyTree]:
    """The actor's and critic's expert CNNs (what a transfer run starts from)."""
    return state.actor_params["params"][EXPERTS], state.critic_params["params"][EXPERTS]


def episodes_per_goal(config: Config) -> int:
    del config
    return 1


def vector_steps_per_iteration(spec: EnvSpec, config: Config) -> int:
    """`env.step` calls per `train_iteration`."""
    del spec
    return config.steps_per_iteration


def act(
    state: State,
    obs: Float[Array, "envs obs"],
    task_id: Int[Array, " envs"],
    key: jax.Array,
    deterministic: bool,
) -> Int[Array, " envs"]:
    """A softmax sample (the authors act so in training and evaluation), or the most likely action."""
    logits = state.actor.apply(state.actor_params, obs, task_id)
    if deterministic:
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    return jax.random.categorical(key, logits).astype(jnp.int32)


def sample_policy(
    actor: MiniGridNetwork, params: PyTree, obs: jax.Array, task_id: jax.Array, key: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """The `onpolicy.PolicyFn` of collection: a sampled action and its log-probability."""
    log_probs = jax.nn.log_softmax(actor.apply(params, obs, task_id))
    action = jax.random.categorical(key, log_probs).astype(jnp.int32)
    return action, jnp.take_along_axis(log_probs, action[:, None], axis=-1)[:, 0]


def values(
    state: State, obs: jax.Array, task_id: jax.Array, critic_params: PyTree | None = None
) -> jax.Array:
    params = state.critic_params if critic_params is None else critic_params
    return state.critic.apply(params, obs, task_id)[..., 0]


def normalize_advantages(
    advantages: Float[Array, " n"], task_id: Int[Array, " n"], num_tasks: int, how: str
) -> Float[Array, " n"]:
    """Standardise per task (each task's samples to mean 0, std 1; numpy's std, eps 1e-8), over the batch,
    or not at all."""
    if how == "none":
        return advantages
    if how == "batch":
        return onpolicy.normalize(advantages)
    one_hot = jax.nn.one_hot(task_id, num_tasks)  # [n, tasks]
    counts = jnp.maximum(one_hot.sum(0), 1.0)
    mean = (one_hot * advantages[:, None]).sum(0) / counts
    var = (one_hot * (advantages[:, None] - mean) ** 2).sum(0) / counts
    return (advantages - mean[task_id]) / (jnp.sqrt(var[task_id]) + 1e-8)


class Batch(struct.PyTreeNode):
    obs: jax.Array
    task_id: jax.Array
    action: jax.Array
    old_log_prob: jax.Array
    advantage: jax.Array
    value_target: jax.Array


def actor_loss(params: PyTree, batch: Batch, *, state: State) -> tuple[jax.Array, pg.PPOAux]:
    """−(L^CLIP + c · mean entropy) of a minibatch: PPO's eq. 7 and 9 for a categorical policy."""
    config = state.config
    params = without_expert_gradients(params, config)
    log_probs = jax.nn.log_softmax(state.actor.apply(params, batch.obs, batch.task_id))
    log_prob = jnp.take_along_axis(log_probs, batch.action[:, None], axis=-1)[:, 0]
    entropy = -jnp.sum(jnp.exp(log_probs) * log_probs, axis=-1).mean()
    objective = pg.ppo_clip_objective(log_prob, batch.old_log_prob, batch.advantage, config.clip_eps)
    ratio = jnp.exp(log_prob - batch.old_log_prob)
    aux = pg.PPOAux(
        entropy=entropy,
        approx_kl=jnp.mean(batch.old_log_prob - log_prob),
        clip_fraction=jnp.mean(jnp.abs(ratio - 1.0) > config.clip_eps),
    )
    return -(objective + config.entropy_coef * entropy), aux


def critic_loss(params: PyTree, batch: Batch, *, state: State) -> tuple[jax.Array, None]:
    """Mean squared error of V against the λ-return targets (the authors' `F.mse_loss`)."""
    params = without_expert_gradients(params, state.config)
    return jnp.mean((values(state, batch.obs, batch.task_id, params) - batch.value_target) ** 2), None


def make_batch(state: State, traj: onpolicy.Trajectory, num_tasks: int) -> Batch:
    """Advantages and targets of a `[steps, envs]` trajectory, flattened to samples."""
    config = state.config
    v = values(state, traj.obs, traj.task_id)
    v_next = values(state, traj.next_obs, traj.task_id)
    advantages = onpolicy.gae(
        traj.reward, v, v_next, traj.terminated, traj.truncated, gamma=config.gamma, lam=config.gae_lambda
    )
    flat = lambda x: x.reshape(-1, *x.shape[2:])  # noqa: E731
    task_id = flat(traj.task_id)
    return Batch(
        obs=flat(traj.obs),
        task_id=task_id,
        action=flat(traj.action),
        old_log_prob=flat(traj.log_prob),
        advantage=normalize_advantages(flat(advantages), task_id, num_tasks, config.advantage_normalization),
        value_target=flat(advantages + v),
    )


def fit_critic(state: State, batch: Batch) -> tuple[State, dict[str, jax.Array]]:
    """`critic_steps` full-batch Adam steps on the squared error."""
    optimizer = make_optimizer(state.config, state.config.critic_lr)

    def one(carry, _):
        params, opt_state = carry
        step = gradient_step(functools.partial(critic_loss, state=state), optimizer, params, opt_state, batch)
        return (step.params, step.opt_state), step.loss

    (params, opt_state), losses = jax.lax.scan(
        one, (state.critic_params, state.critic_opt_state), length=state.config.critic_steps
    )
    loss = losses.mean() if state.config.critic_steps else critic_loss(params, batch, state=state)[0]
    return state.replace(critic_params=params, critic_opt_state=opt_state), {"train/value_loss": loss}


def fit_actor(state: State, batch: Batch, key: jax.Array) -> tuple[State, dict[str, jax.Array]]:
    """`epochs` passes of clipped-surrogate Adam steps over shuffled minibatches."""
    config = state.config
    optimizer = make_optimizer(config, config.actor_lr)
    num_samples = batch.advantage.shape[0]
    size = config.minibatch_per_task * state.actor.num_tasks  # the authors' batch_size * n_contexts

    def minibatch(carry, indices):
        params, opt_state = carry
        rows = jax.tree.map(lambda x: x[indices], batch)
        step = gradient_step(functools.partial(actor_loss, state=state), optimizer, params, opt_state, rows)
        metrics = {
            "train/policy_loss": step.loss,
            "train/entropy": step.aux.entropy,
            "train/approx_kl": step.aux.approx_kl,
            "train/clip_fraction": step.aux.clip_fraction,
            "train/policy_grad_norm": step.grad_norm,
        }
        return (step.params, step.opt_state), metrics

    def epoch(carry, epoch_key):
        full, rest = epoch_minibatches(epoch_key, num_samples, size)
        carry, metrics = jax.lax.scan(minibatch, carry, full)
        if rest.shape[0]:
            carry, last = minibatch(carry, rest)
            metrics = jax.tree.map(lambda m, x: jnp.concatenate([m, x[None]]), metrics, last)
        return carry, jax.tree.map(jnp.mean, metrics)

    carry = (state.actor_params, state.actor_opt_state)
    (params, opt_state), metrics = jax.lax.scan(epoch, carry, jax.random.split(key, config.epochs))
    return state.replace(actor_params=params, actor_opt_state=opt_state), jax.tree.map(jnp.mean, metrics)


def train_iteration(env: Env, state: State, key: jax.Array) -> tuple[State, dict[str, jax.Array]]:
    """One `core.learn` + `fit` of the authors: collect from fresh episodes, fit critic, then actor."""
    reset_key, rollout_key, actor_key = jax.random.split(key, 3)
    env_state, timestep = env.reset(reset_key)
    carry = onpolicy.RolloutState(env_state, timestep, rollout_key)
    policy = functools.partial(sample_policy, state.actor)
    _, traj = onpolicy.collect_steps(env, policy, state.actor_params, carry, state.config.steps_per_iteration)
    batch = make_batch(state, traj, env.spec.num_tasks)
    state, critic_metrics = fit_critic(state, batch)
    state, actor_metrics = fit_actor(state, batch, actor_key)

    episodes = jnp.maximum(jnp.sum(traj.done), 1)
    metrics = {
        **critic_metrics,
        **actor_metrics,
        "train/episodes": jnp.sum(traj.done).astype(jnp.float32),
        "train/success": jnp.sum(traj.success) / episodes,
        "train/episode_return": jnp.sum(traj.reward) / episodes,
    }
    state = state.replace(iteration=state.iteration + 1)
    return state, {name: jnp.asarray(value, jnp.float32) for name, value in metrics.items()}

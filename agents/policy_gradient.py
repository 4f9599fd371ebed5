"""Policy-gradient pieces shared by MT-PPO, MAML-TRPO/PPO and RL²: Gaussian policy, baselines, PPO, TRPO.

Everything is a pure function of pytrees. Losses take the parameters being differentiated first and a
`dist_fn(params, obs) -> (mean, log_std)` by keyword, so a recurrent or adapted policy plugs in unchanged.

- Gaussian policy math: log-density, entropy and KL of diagonal Gaussians (actions are not squashed; the env
  clips them, as in garage's GaussianMLPPolicy used for the Meta-World baselines).
- Baselines: garage's linear feature baseline (Duan et al., "Benchmarking Deep Reinforcement Learning for
  Continuous Control", ICML 2016, arXiv:1604.06778) and an MLP value function.
- PPO: the clipped surrogate of Schulman et al., "Proximal Policy Optimization Algorithms" (2017,
  arXiv:1707.06347), eq. 7, with the entropy bonus of eq. 9.
- TRPO: Schulman et al., "Trust Region Policy Optimization" (ICML 2015, arXiv:1502.05477), Appendix C:
  conjugate gradient on Fisher-vector products, the step scaled to the KL limit, backtracking line search.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import struct
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float

from mtrl.types import PyTree

DistFn = Callable[[PyTree, jax.Array], tuple[jax.Array, jax.Array]]
"""`(params, obs [batch, obs]) -> (mean [batch, act], log_std [batch, act])`."""


# --- Gaussian policy -------------------------------------------------------------------------------------


ACTIVATIONS = {"tanh": jnp.tanh, "relu": nn.relu}
"""Hidden-layer nonlinearities a policy or value MLP may use."""


def dense_kernel_init(glorot: bool) -> nn.initializers.Initializer:
    """Glorot (Xavier) uniform, as garage's and rllab's policies and baselines use, or flax's default."""
    return nn.initializers.glorot_uniform() if glorot else nn.initializers.lecun_normal()


class GaussianPolicy(nn.Module):
    """MLP to the action mean and a log-std, the Gaussian policy of garage's GaussianMLPPolicy.

    The defaults are a tanh MLP to an unsquashed mean with a learned, state-independent log-std starting
    at log(`init_std`). Options, each off by default:

    - `activation`: "tanh" or "relu" hidden layers;
    - `std_head`: the log-std is a second output head on the last hidden layer (state dependent; garage's
      `std_share_network=True` / `std_mlp_type="share_mean_std"`), its bias starting at log(`init_std`);
    - `output_tanh`: tanh on the output layer, i.e. on the mean and on the log-std head (garage's
      `output_nonlinearity=tanh` applies to every head of the shared network);
    - `min_std` / `max_std`: the log-std is clipped to [log min_std, log max_std] after the head (garage's
      `min_std` / `max_std`: a hard clip, so no gradient flows through a clipped entry);
    - `glorot_init`: Glorot-uniform kernels (garage and rllab), instead of flax's LeCun-normal.
    """

    hidden_sizes: tuple[int, ...]
    action_size: int
    init_std: float = 1.0
    activation: str = "tanh"
    std_head: bool = False
    output_tanh: bool = False
    min_std: float | None = None
    max_std: float | None = None
    glorot_init: bool = False

    @nn.compact
    def __call__(self, obs: Float[Array, "batch obs"]) -> tuple[Float[Array, "batch act"], ...]:
        activation = ACTIVATIONS[self.activation]
        kernel_init = dense_kernel_init(self.glorot_init)
        x = obs
        for i, size in enumerate(self.hidden_sizes):
            x = activation(nn.Dense(size, kernel_init=kernel_init, name=f"dense_{i}")(x))
        out = jnp.tanh if self.output_tanh else (lambda y: y)
        mean = out(nn.Dense(self.action_size, kernel_init=kernel_init, name="mean")(x))
        log_init = nn.initializers.constant(math.log(self.init_std))
        if self.std_head:
            head = nn.Dense(
                self.action_size, kernel_init=kernel_init, bias_init=log_init, name="log_std_head"
            )
            log_std = out(head(x))
        else:
            log_std = jnp.broadcast_to(self.param("log_std", log_init, (self.action_size,)), mean.shape)
        if self.min_std is not None or self.max_std is not None:
            low = -jnp.inf if self.min_std is None else math.log(self.min_std)
            high = jnp.inf if self.max_std is None else math.log(self.max_std)
            log_std = jnp.clip(log_std, low, high)
        return mean, log_std


def gaussian_log_prob(
    mean: Float[Array, "*batch act"], log_std: Float[Array, "*batch act"], action: Float[Array, "*batch act"]
) -> Float[Array, "*batch"]:
    """log N(action; mean, diag(exp(2 log_std))), summed over action dimensions."""
    z = (action - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * z**2 - log_std - 0.5 * math.log(2 * math.pi), axis=-1)


def gaussian_entropy(log_std: Float[Array, "*batch act"]) -> Float[Array, "*batch"]:
    """Differential entropy of a diagonal Gaussian: Σ (log σ + ½ log 2πe)."""
    return jnp.sum(log_std + 0.5 * math.log(2 * math.pi * math.e), axis=-1)


def gaussian_kl(
    mean_p: Float[Array, "*batch act"],
    log_std_p: Float[Array, "*batch act"],
    mean_q: Float[Array, "*batch act"],
    log_std_q: Float[Array, "*batch act"],
) -> Float[Array, "*batch"]:
    """KL(p ‖ q) of diagonal Gaussians: Σ log σ_q/σ_p + (σ_p² + (μ_p − μ_q)²) / 2σ_q² − ½."""
    var_ratio = jnp.exp(2 * (log_std_p - log_std_q))
    mahalanobis = ((mean_p - mean_q) * jnp.exp(-log_std_q)) ** 2
    return jnp.sum(log_std_q - log_std_p + 0.5 * (var_ratio + mahalanobis - 1.0), axis=-1)


def sample_gaussian(
    mean: Float[Array, "batch act"], log_std: Float[Array, "batch act"], key: jax.Array
) -> tuple[Float[Array, "batch act"], Float[Array, " batch"]]:
    """An action from the Gaussian and its log-density (the `policy_fn` contract of `mtrl.onpolicy`)."""
    action = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)
    return action, gaussian_log_prob(mean, log_std, action)


@struct.dataclass
class PolicyBatch:
    """Flat on-policy samples for a surrogate: what was seen, done, its advantage and old log-density."""

    obs: Float[Array, "batch obs"]
    action: Float[Array, "batch act"]
    advantage: Float[Array, " batch"]
    old_log_prob: Float[Array, " batch"]


# --- Baselines -------------------------------------------------------------------------------------------


def linear_baseline_features(
    obs: Float[Array, "*batch obs"], time: Float[Array, "*batch"]
) -> Float[Array, "*batch f"]:
    """garage's LinearFeatureBaseline features: [o, o², t, t², t³, 1], o = clip(obs, ±10), t = step / 100.

    `time` is the step index within the episode (broadcast against `obs[..., 0]`); the polynomial in time
    lets a state-blind fit still capture the return's decay towards the episode end (Duan et al. 2016).
    """
    o = jnp.clip(obs, -10.0, 10.0)
    t = jnp.broadcast_to(time, obs.shape[:-1])[..., None].astype(obs.dtype) / 100.0
    return jnp.concatenate([o, o**2, t, t**2, t**3, jnp.ones_like(t)], axis=-1)


def fit_linear_baseline(
    features: Float[Array, "n f"], returns: Float[Array, " n"], reg_coeff: float = 1e-5
) -> Float[Array, " f"]:
    """Ridge regression of returns on features: argmin_w |F w − G|² + reg |w|².

    Solved as least squares on the stacked system [F; √reg I] w = [G; 0] (SVD) rather than the normal
    equations FᵀF, whose condition number (squared, with o² and t³ columns) float32 cannot carry. The
    default singular-value cut-off is off: it would drop the directions only the regulariser pins down.
    garage solves the normal equations in float64 with the same regulariser.
    """
    num_features = features.shape[-1]
    a = jnp.concatenate([features, math.sqrt(reg_coeff) * jnp.eye(num_features, dtype=features.dtype)])
    b = jnp.concatenate([returns, jnp.zeros(num_features, returns.dtype)])
    return jnp.linalg.lstsq(a, b, rcond=0.0)[0]  # the √reg rows make it full rank: cut nothing


def linear_baseline_values(
    weights: Float[Array, " f"], features: Float[Array, "*batch f"]
) -> Float[Array, "*batch"]:
    """The fitted baseline's value estimates."""
    return features @ weights


class ValueNetwork(nn.Module):
    """Tanh MLP from observation to one state value (Glorot-uniform kernels with `glorot_init`)."""

    hidden_sizes: tuple[int, ...]
    glorot_init: bool = False

    @nn.compact
    def __call__(self, obs: Float[Array, "batch obs"]) -> Float[Array, " batch"]:
        kernel_init = dense_kernel_init(self.glorot_init)
        x = obs
        for i, size in enumerate(self.hidden_sizes):
            x = jnp.tanh(nn.Dense(size, kernel_init=kernel_init, name=f"dense_{i}")(x))
        return nn.Dense(1, kernel_init=kernel_init, name="value")(x)[..., 0]


def value_loss(
    params: PyTree, obs: Float[Array, "batch obs"], returns: Float[Array, " batch"], *, network: ValueNetwork
) -> tuple[Float[Array, ""], tuple[()]]:
    """Regression of the MLP baseline on returns (or GAE targets): ½ E[(V(s) − G)²]."""
    return 0.5 * jnp.mean((network.apply(params, obs) - returns) ** 2), ()


# --- PPO -------------------------------------------------------------------------------------------------


class PPOAux(NamedTuple):
    entropy: Float[Array, ""]
    approx_kl: Float[Array, ""]
    """E[log π_old − log π], a cheap estimate of KL(π_old ‖ π) on the batch."""
    clip_fraction: Float[Array, ""]


def ppo_clip_objective(
    log_prob: Float[Array, " batch"],
    old_log_prob: Float[Array, " batch"],
    advantage: Float[Array, " batch"],
    clip_eps: float,
) -> Float[Array, ""]:
    """PPO's clipped surrogate, eq. 7: L^CLIP = E[min(r Â, clip(r, 1 − ε, 1 + ε) Â)], r = π/π_old.

    The min makes it a pessimistic bound: moving r beyond the clip range in the direction Â favours earns
    nothing, while moves that hurt the objective are always counted.
    """
    ratio = jnp.exp(log_prob - old_log_prob)
    clipped = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps)
    return jnp.mean(jnp.minimum(ratio * advantage, clipped * advantage))


def ppo_loss(
    params: PyTree, batch: PolicyBatch, *, dist_fn: DistFn, clip_eps: float, entropy_coef: float
) -> tuple[Float[Array, ""], PPOAux]:
    """The policy part of PPO's eq. 9, to minimise: −(L^CLIP + c₂ S[π]) (the baseline is fitted apart)."""
    mean, log_std = dist_fn(params, batch.obs)
    log_prob = gaussian_log_prob(mean, log_std, batch.action)
    entropy = gaussian_entropy(log_std).mean()
    objective = ppo_clip_objective(log_prob, batch.old_log_prob, batch.advantage, clip_eps)
    ratio = jnp.exp(log_prob - batch.old_log_prob)
    aux = PPOAux(
        entropy=entropy,
        approx_kl=jnp.mean(batch.old_log_prob - log_prob),
        clip_fraction=jnp.mean(jnp.abs(ratio - 1.0) > clip_eps),
    )
    return -(objective + entropy_coef * entropy), aux


# --- TRPO ------------------------------------------------------------------------------------------------


def trpo_surrogate(params: PyTree, batch: PolicyBatch, *, dist_fn: DistFn) -> Float[Array, ""]:
    """TRPO's importance-sampled surrogate (eq. 14), negated to minimise: −E[π(a|s)/π_old(a|s) Â]."""
    mean, log_std = dist_fn(params, batch.obs)
    ratio = jnp.exp(gaussian_log_prob(mean, log_std, batch.action) - batch.old_log_prob)
    return -jnp.mean(ratio * batch.advantage)


def mean_kl(
    params: PyTree,
    obs: Float[Array, "batch obs"],
    *,
    dist_fn: DistFn,
    old_mean: Float[Array, "batch act"],
    old_log_std: Float[Array, "batch act"],
) -> Float[Array, ""]:
    """The trust-region constraint of eq. 14: E_s[KL(π_old(·|s) ‖ π_θ(·|s))] over the sampled states."""
    mean, log_std = dist_fn(params, obs)
    return jnp.mean(gaussian_kl(old_mean, old_log_std, mean, log_std))


def conjugate_gradient(
    matvec: Callable[[jax.Array], jax.Array], b: Float[Array, " n"], *, iters: int = 10, tol: float = 1e-10
) -> Float[Array, " n"]:
    """Solve A x = b for symmetric positive-definite A, given only x ↦ A x (Hestenes–Stiefel CG).

    `iters` matrix-vector products at most (TRPO uses 10); once |r|² ≤ `tol` the iterate is frozen.
    """

    def body(_: int, carry: tuple[jax.Array, ...]) -> tuple[jax.Array, ...]:
        x, r, p, rr = carry
        ap = matvec(p)
        active = rr > tol
        alpha = jnp.where(active, rr / jnp.where(active, p @ ap, 1.0), 0.0)
        x, r = x + alpha * p, r - alpha * ap
        rr_new = r @ r
        beta = jnp.where(active, rr_new / jnp.where(active, rr, 1.0), 0.0)
        return x, r, jnp.where(active, r + beta * p, p), jnp.where(active, rr_new, rr)

    init = (jnp.zeros_like(b), b, b, b @ b)
    return jax.lax.fori_loop(0, iters, body, init)[0]


def fisher_vector_product(
    kl_fn: Callable[[PyTree], jax.Array], params: PyTree, vector: Float[Array, " n"], damping: float = 0.0
) -> Float[Array, " n"]:
    """F v + damping v, with F the Hessian of the mean KL at the old policy (TRPO Appendix C.1).

    At θ = θ_old the KL's Hessian equals the Fisher information; forward-over-reverse differentiation
    gives F v at the cost of about two gradients, never forming F. `vector` is laid out as
    `ravel_pytree(params)`.
    """
    flat, unravel = ravel_pytree(params)
    grad_fn = jax.grad(lambda p: kl_fn(unravel(p)))
    return jax.jvp(grad_fn, (flat,), (vector,))[1] + damping * vector


class TRPOInfo(NamedTuple):
    loss_before: Float[Array, ""]
    loss_after: Float[Array, ""]
    kl: Float[Array, ""]
    """Mean KL of the accepted step (0 when none was accepted)."""
    step_fraction: Float[Array, ""]
    """Fraction of the full step taken: backtrack_ratio^k, or 0 when the line search failed."""


def trpo_step(
    params: PyTree,
    loss_fn: Callable[[PyTree], jax.Array],
    kl_fn: Callable[[PyTree], jax.Array],
    *,
    max_kl: float,
    cg_iters: int = 10,
    damping: float = 1e-5,
    backtrack_ratio: float = 0.8,
    max_backtracks: int = 15,
) -> tuple[PyTree, TRPOInfo]:
    """One TRPO update (Appendix C): natural-gradient direction, scaled to the KL limit, then line search.

    s = F⁻¹ g by conjugate gradient (g = −∇ loss); the full step β s with β = √(2δ / sᵀ F s) reaches
    KL = δ under the quadratic model of the KL. Backtracking shrinks it by `backtrack_ratio` until the true
    mean KL ≤ δ and the loss has decreased; if no fraction passes, the parameters are kept.
    `loss_fn` and `kl_fn` map parameters to scalars; `kl_fn` is KL(π_old ‖ π_params), zero at `params`.
    """
    if max_kl <= 0:
        raise ValueError(f"max_kl must be > 0, got {max_kl}")
    flat, unravel = ravel_pytree(params)
    loss_before, grads = jax.value_and_grad(lambda p: loss_fn(unravel(p)))(flat)

    def fvp(v: jax.Array) -> jax.Array:
        return fisher_vector_product(kl_fn, params, v, damping)

    direction = conjugate_gradient(fvp, -grads, iters=cg_iters)
    curvature = direction @ fvp(direction)
    full_step = jnp.sqrt(2.0 * max_kl / jnp.maximum(curvature, 1e-12)) * direction

    def evaluate(k: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        candidate = unravel(flat + backtrack_ratio**k * full_step)
        loss, kl = loss_fn(candidate), kl_fn(candidate)
        accepted = (kl <= max_kl) & (loss < loss_before) & jnp.isfinite(loss) & jnp.isfinite(kl)
        return loss, kl, accepted

    def searching(carry: tuple[jax.Array, ...]) -> jax.Array:
        k, accepted = carry[0], carry[3]
        return ~accepted & (k < max_backtracks)

    def backtrack(carry: tuple[jax.Array, ...]) -> tuple[jax.Array, ...]:
        k = carry[0]
        return (k + 1, *evaluate(k.astype(flat.dtype)))

    init = (jnp.array(0, jnp.int32), loss_before, jnp.zeros_like(loss_before), jnp.array(False))
    k, loss, kl, accepted = jax.lax.while_loop(searching, backtrack, init)
    fraction = jnp.where(accepted, backtrack_ratio ** (k - 1).astype(flat.dtype), 0.0)
    info = TRPOInfo(
        loss_before=loss_before,
        loss_after=jnp.where(accepted, loss, loss_before),
        kl=jnp.where(accepted, kl, 0.0),
        step_fraction=fraction,
    )
    return unravel(flat + fraction * full_step), info

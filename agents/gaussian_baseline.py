"""garage's GaussianMLPBaseline fitted by PenaltyLBFGSOptimizer: the Meta-World paper's MT-PPO baseline.

Yu et al. (CoRL 2019, arXiv:1910.10897) ran MT-PPO with garage's TF GaussianMLPBaseline
(merge-mw-v2-examples src/garage/tf/baselines/gaussian_mlp_baseline.py, `use_trust_region=True`): an MLP on
standardised observations predicting standardised returns as a Gaussian with a learned scalar std, refitted
after every policy step by L-BFGS on its negative log-likelihood plus an adaptive penalty on the mean KL
between the old and new predictions (src/garage/tf/optimizers/penalty_lbfgs_optimizer.py). It lives here,
apart from `mt_ppo`, as one job: the fit is a function of the network's `apply`, its parameters and the
batch, and knows nothing of the agent's state.

Deviation from garage: L-BFGS is optax's (zoom line search) where garage uses scipy's L-BFGS-B, in float32
where garage fits in float64.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float

from mtrl.types import PyTree

from . import policy_gradient as pg

# garage PenaltyLBFGSOptimizer's defaults (merge-mw-v2-examples src/garage/tf/optimizers/
# penalty_lbfgs_optimizer.py:35-41), used by GaussianMLPBaseline with use_trust_region=True.
LBFGS_ITERATIONS = 20
"""L-BFGS iterations per penalty trial (max_opt_itr=20)."""
PENALTY_RANGE = (1e-2, 1e6)
"""Clip range of the KL penalty (min_penalty, max_penalty)."""
PENALTY_FACTORS = (2.0, 0.5)
"""Penalty multipliers when the KL is above / below the limit (increase/decrease_penalty_factor)."""
PENALTY_TRIALS = 10
"""Penalty trials per fit (max_penalty_itr=10)."""
NORMALIZER_EPS = 1e-8
"""Added to the standard deviations of the baseline's input and output normalisation (garage: 1e-8)."""


@struct.dataclass
class Normalizer:
    """The baseline's input and output standardisation, refitted on every "penalty_lbfgs" fit (identity
    for "adam"): V(s) = net((s − x_mean) / x_std) · y_std + y_mean."""

    x_mean: Float[Array, " obs"]
    x_std: Float[Array, " obs"]
    y_mean: Float[Array, ""]
    y_std: Float[Array, ""]


class BaselineFit(NamedTuple):
    value_params: PyTree
    log_std: Float[Array, ""]
    normalizer: Normalizer
    penalty: Float[Array, ""]
    kl: Float[Array, ""]
    """Mean KL(old ‖ new) of the standardised Gaussian predictions."""
    loss: Float[Array, ""]
    """Negative log-likelihood of the standardised targets after the fit."""


def lbfgs_minimize(fun, x0: PyTree, iterations: int) -> PyTree:
    """`iterations` L-BFGS steps (memory 10, zoom line search) on `fun` from `x0`, over the flattened
    parameters (as scipy's L-BFGS-B in garage)."""
    flat0, unravel = ravel_pytree(x0)
    flat_fun = lambda flat: fun(unravel(flat))  # noqa: E731
    optimizer = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(flat_fun)

    def body(carry, _):
        params, opt_state = carry
        value, grad = value_and_grad(params, state=opt_state)
        updates, opt_state = optimizer.update(
            grad, opt_state, params, value=value, grad=grad, value_fn=flat_fun
        )
        return (optax.apply_updates(params, updates), opt_state), None

    flat = jax.lax.scan(body, (flat0, optimizer.init(flat0)), length=iterations)[0][0]
    return unravel(flat)


def fit_baseline(
    params: PyTree,
    log_std: Float[Array, ""],
    penalty: Float[Array, ""],
    obs: Float[Array, "n obs"],
    returns: Float[Array, " n"],
    *,
    apply_fn: Callable[[PyTree, jax.Array], jax.Array],
    max_kl: float,
) -> BaselineFit:
    """garage's GaussianMLPBaseline.fit with PenaltyLBFGSOptimizer, on this iteration's samples.

    `params` and `log_std` are the current model (`apply_fn(params, x)` its mean on standardised inputs,
    `log_std` its learned log-std on the standardised scale), `penalty` the KL penalty the last fit left.
    Inputs and targets are standardised by this batch's mean and std (+1e-8), old and new model alike. The
    model is N(y; net(x), σ²) on that scale, σ a learned scalar; the fit minimises its negative
    log-likelihood + p · mean KL(old ‖ new) by `LBFGS_ITERATIONS` L-BFGS steps from the old parameters, for
    up to `PENALTY_TRIALS` penalties p: starting from the last fit's p, doubling while the KL exceeds
    `max_kl` or halving while it does not, until the KL crosses the limit; it keeps the last parameters
    within the limit (the old ones if none), and the last p tried for the next fit.
    """
    x_mean, x_std = obs.mean(axis=0), obs.std(axis=0) + NORMALIZER_EPS
    y_mean, y_std = returns.mean(), returns.std() + NORMALIZER_EPS
    normalizer = Normalizer(x_mean, x_std, y_mean, y_std)
    x, y = (obs - x_mean) / x_std, (returns - y_mean) / y_std
    old = (params, log_std)
    old_mean = apply_fn(old[0], x)

    def nll(params: tuple[PyTree, jax.Array]) -> jax.Array:
        mean, log_std = apply_fn(params[0], x), params[1]
        return jnp.mean(0.5 * ((y - mean) * jnp.exp(-log_std)) ** 2 + log_std + 0.5 * math.log(2 * math.pi))

    def mean_kl(params: tuple[PyTree, jax.Array]) -> jax.Array:
        mean, log_std = apply_fn(params[0], x), params[1]
        return jnp.mean(
            pg.gaussian_kl(old_mean[:, None], old[1][None, None], mean[:, None], log_std[None, None])
        )

    def trial(carry):
        tries, penalty, factor, best, _ = carry
        candidate = lbfgs_minimize(lambda p: nll(p) + penalty * mean_kl(p), old, LBFGS_ITERATIONS)
        kl = mean_kl(candidate)
        best = select(kl < max_kl, candidate, best)
        first = (factor == 0.0) | jnp.isnan(kl)  # garage: no factor chosen yet, or a NaN constraint
        increase = (kl > max_kl) | jnp.isnan(kl)
        best = select(first & ~increase, candidate, best)
        factor = jnp.where(first, jnp.where(increase, PENALTY_FACTORS[0], PENALTY_FACTORS[1]), factor)
        crossed = ~first & (((factor > 1) & (kl <= max_kl)) | ((factor < 1) & (kl >= max_kl)))
        scaled = jnp.clip(penalty * factor, *PENALTY_RANGE)
        return tries + 1, jnp.where(crossed, penalty, scaled), factor, best, crossed

    def searching(carry) -> jax.Array:
        return (carry[0] < PENALTY_TRIALS) & ~carry[4]

    start = jnp.clip(penalty, *PENALTY_RANGE)
    carry = (jnp.zeros((), jnp.int32), start, jnp.zeros((), jnp.float32), old, jnp.array(False))
    _, penalty, _, best, _ = jax.lax.while_loop(searching, trial, carry)
    return BaselineFit(best[0], best[1], normalizer, penalty, mean_kl(best), nll(best))


def select(condition: jax.Array, on_true: PyTree, on_false: PyTree) -> PyTree:
    return jax.tree.map(lambda a, b: jnp.where(condition, a, b), on_true, on_false)

"""Multi-task gradient methods against hand computations, brute force and defining properties; then
inside the SAC update (jit, vmap, orbax, fitting a fixed batch, every torso) and (slow) in a learning run on
the toy tasks."""

from __future__ import annotations

import functools
import itertools
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest
import scipy.optimize
from helpers import (
    LEARN,
    SAC_AGENTS,
    SAC_CONFIGS,
    SMALL,
    SPEC,
    fast_key,
    flat,
    make_batch,
    run_loop,
    toy_config,
)
from mtrl.agents import get_agent, moore_sac, mt_sac, sac
from mtrl.agents import gradient_methods as gm
from mtrl.agents.sac import agent as sac_agent
from mtrl.agents.sac import losses

from mtrl.gradients import gradient_step

METHODS = ("pcgrad", "cagrad", "gradnorm", "famo", "aligned_mtl")


def as_tree(matrix: np.ndarray) -> dict:
    """Task gradients [T, P] as a two-leaf pytree, so every method must flatten across leaves."""
    split = matrix.shape[1] // 3
    return {
        "a": jnp.asarray(matrix[:, :split]),
        "b": {"c": jnp.asarray(matrix[:, split:].reshape(len(matrix), -1, 1))},
    }


def as_vector(tree: dict) -> np.ndarray:
    return np.concatenate([np.asarray(tree["a"]).ravel(), np.asarray(tree["b"]["c"]).ravel()])


def combine(method: gm.GradientMethod, grads: np.ndarray, losses=None, state=None, key=None):
    num_tasks = grads.shape[0]
    losses = jnp.ones((num_tasks,)) if losses is None else jnp.asarray(losses)
    state = method.init(num_tasks) if state is None else state
    key = jax.random.key(0) if key is None else key
    out, state, metrics = method.combine(as_tree(grads), losses, state, key)
    return as_vector(out), state, metrics


# --- per-task gradients -----------------------------------------------------------------------------


def noisy_regression_loss(params, batch, key):
    """A loss that uses its key, like the SAC losses: mean squared error against noisy targets."""
    noise = 0.1 * jax.random.normal(key, batch["y"].shape)
    pred = batch["x"] @ params["w"] + params["b"]
    return jnp.mean((pred - batch["y"] - noise) ** 2), pred.mean()


def test_vmapped_task_gradients_equal_a_loop_over_task_slices():
    rng = np.random.default_rng(0)
    tasks, rows = 3, 5
    batch = {"x": rng.normal(size=(tasks * rows, 4)), "y": rng.normal(size=(tasks * rows,))}
    params = {"w": jnp.asarray(rng.normal(size=4)), "b": jnp.asarray(0.3)}
    keys = jax.random.split(jax.random.key(1), tasks)
    (task_losses, aux), grads = gm.task_losses_and_grads(
        noisy_regression_loss, params, gm.split_tasks(batch, tasks), keys
    )
    for t in range(tasks):
        rows_t = jax.tree.map(lambda x, t=t: x[t * rows : (t + 1) * rows], batch)
        (loss_t, aux_t), grad_t = jax.value_and_grad(noisy_regression_loss, has_aux=True)(
            params, rows_t, keys[t]
        )
        np.testing.assert_allclose(task_losses[t], loss_t, rtol=1e-6)
        np.testing.assert_allclose(aux[t], aux_t, rtol=1e-6)
        for leaf, leaf_t in zip(jax.tree.leaves(grads), jax.tree.leaves(grad_t), strict=True):
            np.testing.assert_allclose(leaf[t], leaf_t, rtol=1e-6)


def regression_problem(tasks=3, rows=5):
    rng = np.random.default_rng(7)
    batch = {"x": rng.normal(size=(tasks * rows, 4)), "y": rng.normal(size=(tasks * rows,))}
    return {"w": jnp.asarray(rng.normal(size=4)), "b": jnp.asarray(0.3)}, batch


def test_task_gradient_step_with_the_mean_is_the_full_batch_step():
    """Equal rows per task: the mean of per-task gradients of a key-free loss is the batch gradient."""
    params, batch = regression_problem()
    loss = lambda p, b, k: (jnp.mean((b["x"] @ p["w"] + p["b"] - b["y"]) ** 2), ())
    opt = optax.sgd(0.1)
    step = gm.task_gradient_step(
        loss, gm.mean(), opt, params, opt.init(params), (), batch, jax.random.key(0), 3
    )
    full = gradient_step(loss, opt, params, opt.init(params), batch, jax.random.key(0))
    np.testing.assert_allclose(flat(step.params), flat(full.params), rtol=1e-6)
    np.testing.assert_allclose(step.loss, full.loss, rtol=1e-6)


def test_famo_single_backward_equals_its_per_task_combination():
    params, batch = regression_problem()
    opt = optax.sgd(0.1)
    results = []
    for method in (gm.famo(1e-3, 0.025), gm.famo(1e-3, 0.025)._replace(weigh=None)):
        p, o, s = params, opt.init(params), method.init(3)
        step = jax.jit(
            lambda p, o, s, k, m=method: gm.task_gradient_step(
                noisy_regression_loss, m, opt, p, o, s, batch, k, 3
            )
        )
        for i in range(3):
            p, o, _, _, _, s, _ = step(p, o, s, jax.random.key(i))
        results.append((p, s))
    (p1, s1), (p2, s2) = results
    np.testing.assert_allclose(flat(p1), flat(p2), rtol=1e-5)
    np.testing.assert_allclose(s1.logits, s2.logits, rtol=1e-5)
    assert not np.allclose(s1.logits, 0.0)  # the logits did learn


def test_split_tasks_refuses_unbalanced_batches():
    with pytest.raises(ValueError, match="batch of 7 rows is not task-balanced over 3 tasks"):
        gm.split_tasks({"x": np.zeros((7, 2))}, 3)


def test_gram_matrix_and_conflict_fraction():
    rng = np.random.default_rng(2)
    g = rng.normal(size=(4, 9))
    np.testing.assert_allclose(gm.gram_matrix(as_tree(g)), g @ g.T, rtol=1e-5, atol=1e-5)
    gram = np.array([[1.0, -1, 2, 0], [-1, 1, -3, 1], [2, -3, 1, 1], [0, 1, 1, 1]])
    assert float(gm.conflict_fraction(jnp.asarray(gram))) == pytest.approx(2 / 6)  # pairs (0,1), (1,2)


# --- PCGrad -----------------------------------------------------------------------------------------


def test_pcgrad_two_tasks_match_hand_projection():
    rng = np.random.default_rng(3)
    g1 = rng.normal(size=12)
    g2 = -0.7 * g1 + rng.normal(size=12)  # conflicting: g1·g2 < 0
    x = g1 @ g2
    assert x < 0
    # Each projects off the other's normal plane: g1' = g1 − (g1·g2/|g2|²) g2, g2' likewise.
    p1 = g1 - x / (g2 @ g2) * g2
    p2 = g2 - x / (g1 @ g1) * g1
    out, _, metrics = combine(gm.pcgrad(), np.stack([g1, g2]))
    np.testing.assert_allclose(out, (p1 + p2) / 2, rtol=1e-5, atol=1e-6)
    assert float(metrics["conflict_fraction"]) == 1.0
    # g1'·g2' = −x (1 − x²/(|g1|²|g2|²)) ≥ 0 by Cauchy–Schwarz: no conflict after projection,
    # and the update helps both tasks to first order.
    assert p1 @ p2 >= 0 and out @ g1 >= 0 and out @ g2 >= 0

    agreeing = np.stack([g1, 0.5 * g1 + rng.normal(size=12) * 0.1])
    assert agreeing[0] @ agreeing[1] > 0
    np.testing.assert_allclose(combine(gm.pcgrad(), agreeing)[0], agreeing.mean(0), rtol=1e-5)


def test_pcgrad_coefficients_follow_the_given_order():
    """Three tasks: the Gram-space projection equals Algorithm 1 run on the vectors in float64."""
    rng = np.random.default_rng(4)
    g = rng.normal(size=(3, 7))
    g[2] = -g[0] - 0.5 * g[1] + 0.3 * rng.normal(size=7)
    orders = np.array([[2, 0, 1], [0, 2, 1], [1, 2, 0]])
    with jax.enable_x64(True):  # float64 references, inside the test only
        coeffs = gm.pcgrad_coefficients(jnp.asarray(g @ g.T), jnp.asarray(orders))
    for i in range(3):
        projected = g[i].copy()
        for j in orders[i]:
            if j != i and projected @ g[j] < 0:
                projected -= (projected @ g[j]) / (g[j] @ g[j]) * g[j]
        np.testing.assert_allclose(np.asarray(coeffs)[i] @ g, projected, rtol=1e-10, atol=1e-12)


def test_pcgrad_random_orders_are_permutations_drawn_from_the_key():
    orders = np.asarray(gm.random_orders(jax.random.key(5), 6))
    assert all(sorted(row) == list(range(6)) for row in orders)
    assert not np.array_equal(orders, np.asarray(gm.random_orders(jax.random.key(6), 6)))


# --- CAGrad -----------------------------------------------------------------------------------------


def primal_optimum(g: np.ndarray, c: float) -> float:
    """max_d min_i g_i·d s.t. ‖d − g0‖ ≤ c‖g0‖, by SLSQP on (d, t): maximise t with g_i·d ≥ t."""
    g0 = g.mean(0)
    radius_sq = c**2 * (g0 @ g0)
    cons = [
        {"type": "ineq", "fun": lambda z: g @ z[:-1] - z[-1]},
        {"type": "ineq", "fun": lambda z: radius_sq - np.sum((z[:-1] - g0) ** 2)},
    ]
    start = np.append(g0, np.min(g @ g0))
    result = scipy.optimize.minimize(lambda z: -z[-1], start, constraints=cons, method="SLSQP", tol=1e-12)
    assert result.success, result.message
    return -result.fun


@pytest.mark.parametrize("num_tasks", [2, 3, 4])
def test_cagrad_solves_its_primal(num_tasks):
    rng = np.random.default_rng(10 + num_tasks)
    g = rng.normal(size=(num_tasks, 6)) + np.array([0.3, 0, 0, 0, 0, 0])
    c = 0.4
    with jax.enable_x64(True):  # float64 references, inside the test only
        w, weights = gm.cagrad_weights(jnp.asarray(g @ g.T), c)
    w, d = np.asarray(w), np.asarray(weights) @ g
    g0 = g.mean(0)
    assert np.linalg.norm(d - g0) <= c * np.linalg.norm(g0) * (1 + 1e-6)  # feasible
    assert np.min(g @ d) >= primal_optimum(g, c) - 1e-6 * np.linalg.norm(g0) ** 2  # optimal
    np.testing.assert_allclose(w.sum(), 1.0, rtol=1e-9)
    assert np.all(w >= 0)
    # The dual: w minimises g_wᵀg0 + c‖g0‖‖g_w‖ over a grid of the simplex.
    dual = lambda v: (v @ g) @ g0 + c * np.linalg.norm(g0) * np.linalg.norm(v @ g)
    steps = 60 if num_tasks <= 3 else 20
    grid = [
        np.array(p) / steps for p in itertools.product(range(steps + 1), repeat=num_tasks) if sum(p) == steps
    ]
    assert dual(w) <= min(dual(v) for v in grid) + 1e-9


def test_cagrad_with_mt10_sized_problem_matches_scipy_in_float32():
    rng = np.random.default_rng(20)
    g = rng.normal(size=(10, 50)) + 0.2
    out, _, metrics = combine(gm.cagrad(0.4), g.astype(np.float32))
    assert np.min(g @ out) >= primal_optimum(g, 0.4) - 1e-3 * np.linalg.norm(g.mean(0)) ** 2
    assert 0 < float(metrics["conflict_fraction"]) < 1


def test_cagrad_small_radius_is_the_mean():
    g = np.random.default_rng(21).normal(size=(3, 9))
    out, _, _ = combine(gm.cagrad(1e-6), g.astype(np.float32))
    np.testing.assert_allclose(out, g.mean(0), rtol=1e-4, atol=1e-5)


def test_simplex_projection_against_brute_force():
    rng = np.random.default_rng(22)
    for v in rng.normal(size=(5, 4)) * 2:
        w = np.asarray(gm.project_to_simplex(jnp.asarray(v)))
        found = scipy.optimize.minimize(
            lambda u, v=v: np.sum((u - v) ** 2), np.full(4, 0.25), method="SLSQP", bounds=[(0, 1)] * 4,
            constraints=[{"type": "eq", "fun": lambda u: u.sum() - 1}], tol=1e-12,
        )  # fmt: skip
        np.testing.assert_allclose(w, found.x, atol=1e-5)


# --- Aligned-MTL ------------------------------------------------------------------------------------


def test_aligned_gradients_have_condition_number_one():
    g = np.random.default_rng(30).normal(size=(3, 8)) * np.array([[1.0], [5.0], [0.2]])
    with jax.enable_x64(True):  # float64 references, inside the test only
        b, condition = gm.alignment_matrix(jnp.asarray(g @ g.T))
    singular = np.linalg.svd(np.asarray(b) @ g, compute_uv=False)
    original = np.linalg.svd(g, compute_uv=False)
    np.testing.assert_allclose(singular, original.min(), rtol=1e-9)  # all equal, to σ_min
    np.testing.assert_allclose(condition, original.max() / original.min(), rtol=1e-9)
    out, _, _ = combine(gm.aligned_mtl(), g.astype(np.float32))
    np.testing.assert_allclose(out, (np.asarray(b) @ g).mean(0), rtol=1e-4, atol=1e-5)


def test_aligned_mtl_drops_null_directions_of_a_rank_deficient_matrix():
    g = np.random.default_rng(31).normal(size=(3, 8))
    g[2] = g[0]  # rank 2
    with jax.enable_x64(True):  # float64 references, inside the test only
        b, _ = gm.alignment_matrix(jnp.asarray(g @ g.T))
    singular = np.linalg.svd(np.asarray(b) @ g, compute_uv=False)
    original = np.linalg.svd(g, compute_uv=False)
    np.testing.assert_allclose(singular[:2], original[1], rtol=1e-8)
    assert singular[2] < 1e-8 and np.all(np.isfinite(np.asarray(b)))


# --- FAMO -------------------------------------------------------------------------------------------


def test_famo_weights_and_logit_update_match_closed_form():
    gamma, lr = 1e-3, 0.025
    method = gm.famo(gamma, lr)
    logits = np.array([0.2, -0.5, 0.1], np.float32)
    before = np.array([2.0, 0.5, 1.0], np.float32)
    after = np.array([1.5, 0.45, 1.1], np.float32)
    g = np.random.default_rng(40).normal(size=(3, 6)).astype(np.float32)
    state = method.init(3)._replace(logits=jnp.asarray(logits))

    out, state, _ = combine(method, g, before, state)
    # Eq. 7: d = Σ c z_i/ℓ_i g_i with z = softmax(ξ), c = 1/Σ z_i/ℓ_i.
    z = np.exp(logits) / np.exp(logits).sum()
    weights = (z / before) / np.sum(z / before)
    np.testing.assert_allclose(out, weights @ g, rtol=1e-5)

    state = method.after_step(state, jnp.asarray(after))
    # Eq. 8: δ_i = log ℓ_i(before) − log ℓ_i(after); ∂/∂ξ_j of Σ_i z_i δ_i = z_j (δ_j − Σ_i z_i δ_i);
    # plus the decay γξ. Adam's first step is −lr · m̂/(√v̂ + ε) with m̂ = grad, v̂ = grad².
    delta = np.log(before) - np.log(after)
    grad = z * (delta - z @ delta) + gamma * logits
    np.testing.assert_allclose(
        gm.famo_logit_gradient(jnp.asarray(logits), jnp.asarray(delta), gamma), grad, rtol=1e-5
    )
    expected = logits - lr * grad / (np.abs(grad) + 1e-8)
    np.testing.assert_allclose(state.logits, expected, rtol=1e-5)
    # the task whose loss fell least (task 2, it rose) gains weight, the one that fell most loses it
    z_new = np.exp(np.asarray(state.logits)) / np.exp(np.asarray(state.logits)).sum()
    assert z_new[2] > z[2] and z_new[0] < z[0]


# --- GradNorm ---------------------------------------------------------------------------------------


def test_gradnorm_weight_gradient_by_hand():
    # w = (1, 1, 1), ‖g‖ = (1, 2, 3) → G = (1, 2, 3), Ḡ = 2. Losses/L(0) = (1, 0.5, 0.5) → mean 2/3,
    # r = (1.5, 0.75, 0.75); α = 1: targets = 2 r = (3, 1.5, 1.5); signs of G − target: (−, +, +);
    # ∂L_grad/∂w_i = sign · ‖g_i‖ = (−1, 2, 3).
    grad, targets = gm.gradnorm_weight_gradient(
        jnp.ones(3), jnp.array([1.0, 2, 3]), jnp.array([2.0, 1, 1]), jnp.array([2.0, 2, 2]), 1.0
    )
    np.testing.assert_allclose(targets, [3.0, 1.5, 1.5], rtol=1e-6)
    np.testing.assert_allclose(grad, [-1.0, 2.0, 3.0], rtol=1e-6)


def test_gradnorm_equalises_weighted_norms_of_fixed_gradients():
    """Equal training rates (constant losses): every target is Ḡ, so w_i ‖g_i‖ must equalise,
    i.e. w_i → T (1/‖g_i‖) / Σ_j 1/‖g_j‖."""
    g = np.random.default_rng(50).normal(size=(3, 10)).astype(np.float32) * np.array(
        [[0.5], [1.0], [3.0]], np.float32
    )
    norms = np.linalg.norm(g, axis=1)
    method = gm.gradnorm(alpha=1.5, learning_rate=0.025)
    state = method.init(3)
    step = jax.jit(lambda s: method.combine(as_tree(g), jnp.ones(3), s, jax.random.key(0))[1])
    for _ in range(300):
        state = step(state)
    expected = 3 * (1 / norms) / np.sum(1 / norms)
    np.testing.assert_allclose(state.weights, expected, rtol=0.05)
    np.testing.assert_allclose(np.sum(state.weights), 3.0, rtol=1e-5)


def test_gradnorm_drives_norms_to_targets_on_a_toy_quadratic():
    """L_i(θ) = ½ a_i ‖θ − c_i‖², descended with GradNorm's combination: the relative gap between
    each weighted norm w_i ‖∇L_i‖ and its target Ḡ r_i^α (eq. 2, computed here) shrinks."""
    rng = np.random.default_rng(51)
    scale = np.array([0.2, 1.0, 5.0])
    centres = rng.normal(size=(3, 8))
    method, alpha = gm.gradnorm(alpha=1.5, learning_rate=0.025), 1.5

    def task_losses_grads(theta):
        diff = theta[None] - centres
        return 0.5 * scale * np.sum(diff**2, axis=1), scale[:, None] * diff

    def gap(weights, losses, grads, initial):
        norms = np.asarray(weights) * np.linalg.norm(grads, axis=1)
        ratios = losses / initial
        targets = norms.mean() * (ratios / ratios.mean()) ** alpha
        return np.mean(np.abs(norms - targets)) / norms.mean()

    step = jax.jit(lambda grads, losses, s: method.combine(as_tree(grads), losses, s, jax.random.key(0)))
    theta, state = np.zeros(8), method.init(3)
    initial, gaps = task_losses_grads(theta)[0], []
    for _ in range(400):
        losses, grads = task_losses_grads(theta)
        gaps.append(gap(state.weights, losses, grads, initial))
        update, state, _ = step(grads.astype(np.float32), losses.astype(np.float32), state)
        theta = theta - 0.02 * as_vector(update)
    assert np.mean(gaps[-50:]) < 0.3 * np.mean(gaps[:5]), (gaps[:5], gaps[-5:])


# --- inside the SAC update --------------------------------------------------------------------------


@functools.cache
def vmapped_update():
    return jax.jit(jax.vmap(sac.update))


def two_updates(config, seeds: int = 2):
    """Seed-vmapped MT-SAC states of `config` on SPEC, a balanced batch per seed, and both after two
    jitted, vmapped updates (the second uses the gradient method's state)."""
    agent = mt_sac
    states = jax.vmap(lambda k: agent.init(k, SPEC, config))(jax.random.split(fast_key(0), seeds))
    batches = make_batch(1, [0, 1, 2], 4, seeds)
    keys = jax.random.split(fast_key(2), seeds)
    new_states, metrics = vmapped_update()(states, batches, keys)
    new_states, metrics = vmapped_update()(new_states, batches, keys)
    return states, batches, new_states, metrics


def assert_updated(states, new_states, metrics, seeds: int = 2):
    assert jax.tree.structure(new_states) == jax.tree.structure(states)
    for old, new in zip(jax.tree.leaves(states), jax.tree.leaves(new_states), strict=True):
        assert old.dtype == new.dtype and old.shape == new.shape
    for name, value in metrics.items():
        assert value.shape == (seeds,) and np.all(np.isfinite(value)), name
    assert not np.allclose(flat(new_states.critic_params), flat(states.critic_params))
    assert not np.allclose(flat(new_states.actor_params), flat(states.actor_params))
    assert np.all(~np.isclose(new_states.log_alphas, states.log_alphas))  # every task's rows came back


@pytest.mark.parametrize("method", METHODS)
def test_method_runs_in_sac_update_under_jit_and_vmap_and_fits_a_fixed_batch(method):
    """Each method inside MT-SAC's update (the methods see only the gradient pytree: every torso takes one,
    below). Then 400 more updates on the same batch made terminal (the critic's target is the reward itself)
    leave each seed's critic loss under 0.6 of where it started (measured: 0.16-0.47), with the same compiled
    program: the cheap learning check of every method (their toy learning runs are slow)."""
    config = mt_sac.Config(hidden_sizes=(16, 16), gradient_method=method)
    states, batches, new_states, metrics = two_updates(config)
    assert_updated(states, new_states, metrics)
    expected = {"pcgrad": "conflict_fraction", "cagrad": "weight_entropy", "aligned_mtl": "condition_number"}
    expected |= {"gradnorm": "weight_entropy", "famo": "weight_entropy"}
    assert f"train/critic_{expected[method]}" in metrics
    if method in ("gradnorm", "famo"):  # loss balancing needs positive losses: critic only
        assert new_states.actor_method_state == () and not any(k.startswith("train/actor_w") for k in metrics)
        learned = new_states.critic_method_state
        if method == "gradnorm":
            assert not np.allclose(learned.weights, 1.0)  # weights start at 1
        else:
            assert not np.allclose(learned.logits, 0.0)  # logits start at 0
    else:
        assert f"train/actor_{expected[method]}" in metrics

    terminal = batches.replace(terminated=np.ones_like(batches.terminated))
    state, losses = new_states, []
    for step in range(400):
        keys = jax.random.split(fast_key(100 + step), 2)
        state, metrics = vmapped_update()(state, terminal, keys)
        losses.append(metrics["train/critic_loss"])
    losses = np.asarray(losses)  # [updates, seeds]
    assert np.all(np.isfinite(losses))
    assert np.all(losses[-5:].mean(0) < 0.6 * losses[:5].mean(0)), (losses[:5], losses[-5:])


WEIGHTING_OFF = {"paco_sac": {"loss_threshold": None}, "softmod_sac": {"reweight_by_temperature": False}}


@pytest.mark.parametrize("name", SAC_AGENTS)
def test_every_torso_takes_a_gradient_method(name):
    """Every SAC torso's update traces with PCGrad (it projects both the critic's and the actor's task
    gradients) into a state of the same structure, shapes and dtypes, with the method's metrics: the methods
    see only the gradient pytree. Traced, not compiled: the numbers are checked on MT-SAC above."""
    agent = get_agent(name)
    config = agent.Config(**SAC_CONFIGS[name], **WEIGHTING_OFF.get(name, {}), gradient_method="pcgrad")
    state = jax.eval_shape(lambda k: agent.init(k, SPEC, config), fast_key(0))
    new_state, metrics = jax.eval_shape(sac.update, state, make_batch(1, [0, 1, 2]), fast_key(1))
    assert jax.tree.structure(new_state) == jax.tree.structure(state)
    for old, new in zip(jax.tree.leaves(state), jax.tree.leaves(new_state), strict=True):
        assert old.dtype == new.dtype and old.shape == new.shape
    assert "train/critic_conflict_fraction" in metrics and "train/actor_conflict_fraction" in metrics


def plain_update(state, batch, key):
    """The SAC update as it was before gradient methods: gradient_step on the full-batch losses."""
    config, net, adam = state.config, state.networks, optax.adam
    critic_key, actor_key = jax.random.split(key)
    critic = gradient_step(
        functools.partial(losses.critic_loss, networks=net, config=config, actor_params=state.actor_params,
                          target_critic_params=state.target_critic_params, log_alphas=state.log_alphas),
        adam(config.critic_lr), state.critic_params, state.critic_opt_state, batch, critic_key,
    )  # fmt: skip
    actor = gradient_step(
        functools.partial(losses.actor_loss, networks=net, config=config, critic_params=critic.params,
                          log_alphas=state.log_alphas),
        adam(config.actor_lr), state.actor_params, state.actor_opt_state, batch, actor_key,
    )  # fmt: skip
    alpha = gradient_step(
        functools.partial(losses.alpha_loss, target_entropy=state.target_entropy),
        adam(config.alpha_lr), state.log_alphas, state.alpha_opt_state, actor.aux.log_prob, batch.task_id,
    )  # fmt: skip
    target = optax.incremental_update(critic.params, state.target_critic_params, config.tau)
    return critic, actor, alpha, target


def test_mean_reproduces_the_plain_update_bit_for_bit():
    config = mt_sac.Config(hidden_sizes=(16, 16))
    assert config.gradient_method == "mean"
    state = mt_sac.init(jax.random.key(0), SPEC, config)
    batch = make_batch(1, [0, 1, 2])
    key = jax.random.key(3)
    new_state, _ = jax.jit(sac.update)(state, batch, key)
    critic, actor, alpha, target = jax.jit(plain_update)(state, batch, key)
    for got, want in [
        (new_state.critic_params, critic.params),
        (new_state.actor_params, actor.params),
        (new_state.log_alphas, alpha.params),
        (new_state.target_critic_params, target),
        (new_state.critic_opt_state, critic.opt_state),
        (new_state.actor_opt_state, actor.opt_state),
    ]:
        np.testing.assert_array_equal(flat(got), flat(want))
    assert new_state.critic_method_state == () and new_state.actor_method_state == ()


def test_method_state_round_trips_through_orbax(tmp_path):
    config = mt_sac.Config(hidden_sizes=(8,), gradient_method="famo")  # logits, losses, Adam state
    state = mt_sac.init(fast_key(0), SPEC, config)
    state, _ = jax.jit(sac.update)(state, make_batch(1, [0, 1, 2]), fast_key(1))
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(tmp_path / "state", state)
    checkpointer.wait_until_finished()
    template = mt_sac.init(fast_key(5), SPEC, config)
    restored = checkpointer.restore(
        tmp_path / "state", jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
    )
    assert jax.tree.structure(restored) == jax.tree.structure(state)
    np.testing.assert_array_equal(flat(restored.critic_method_state), flat(state.critic_method_state))


def test_per_task_methods_refuse_an_unbalanced_batch():
    config = mt_sac.Config(hidden_sizes=(8,), gradient_method="pcgrad")
    state = mt_sac.init(fast_key(0), SPEC, config)
    with pytest.raises(ValueError, match="not task-balanced over 3 tasks"):
        sac.update(state, make_batch(1, [0, 1], 5), fast_key(1))


# --- configuration ----------------------------------------------------------------------------------


def test_sac_knows_every_method_name():
    assert tuple(sac_agent.METHODS) == gm.GRADIENT_METHODS


def test_unknown_method_names_the_valid_ones():
    with pytest.raises(
        ValueError, match="'nash_mtl'; valid: mean, pcgrad, cagrad, gradnorm, famo, aligned_mtl"
    ):
        mt_sac.Config(gradient_method="nash_mtl")


@pytest.mark.parametrize(
    "field, value",
    [("cagrad_c", 0.0), ("cagrad_c", -0.4), ("gradnorm_alpha", -1.0), ("gradnorm_lr", 0.0),
     ("famo_gamma", -1e-3), ("famo_lr", float("nan"))],
)  # fmt: skip
def test_bad_hyperparameters_are_refused(field, value):
    with pytest.raises(ValueError, match=f"^{field} must be a finite number"):
        moore_sac.Config(**{field: value})


# --- learning ---------------------------------------------------------------------------------------


def learns(method: str) -> None:
    start = time.perf_counter()
    agent = mt_sac.Config(**SMALL, gradient_method=method)
    _, final, logged = run_loop(toy_config(agent, LEARN), jax.random.key(0))
    print(f"{method}: success {final['eval/success']:.2f} in {time.perf_counter() - start:.0f} s")
    assert final["eval/success"] >= 0.9, final
    assert all(np.isfinite(m.get("train/critic_loss", 0.0)) for _, m in logged)


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_method_learns_toy_tasks(method):
    """Slow (a minute or more each on 2 cores); CI's checks: each method fits a fixed batch (above), and
    MT-SAC with the mean learns the toy tasks (test_training)."""
    learns(method)

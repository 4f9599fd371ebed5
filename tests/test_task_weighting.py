"""Task weighting in the SAC core: PaCo's loss mask-out and w-reset, SoftMod's temperature weights.

Losses and gradients against hand computations on the 4-row linear SAC of test_sac_losses (conftest's
`linear_sac`); the agents' updates against the plain SAC update (bit for bit where nothing is weighted) and
against the defining properties of mask-out (a masked task's data cannot move anything) and w-reset (a
convex combination of the healthy tasks' compositions, the same in every network and in the Adam second
moment).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import (
    ACT,
    CONFIG,
    GAMMA,
    NETWORKS,
    SPEC,
    TARGET_ENTROPY,
    as_jax,
    fast_key,
    flat,
    make_batch,
    np_policy_sample,
    np_q,
)
from mtrl.agents import paco_sac, sac, softmod_sac
from mtrl.agents.sac import losses

# --- losses against hand computations --------------------------------------------------------------


def hand_target(actor, targets, batch, log_alphas, key):
    """y = r + γ (1 − d) (min_j Q̄_j(s', a') − α_task log π(a'|s')) with the loss's own noise draw."""
    noise = np.asarray(jax.random.normal(key, (4, ACT)), np.float64)
    next_action, next_log_prob = np_policy_sample(actor, batch.next_obs, noise)
    min_target = np.minimum(*(np_q(t, batch.next_obs, next_action) for t in targets))
    alpha = np.exp(log_alphas)[batch.task_id]
    return batch.reward + GAMMA * (1 - batch.terminated) * (min_target - alpha * next_log_prob)


def hand_weighted_critic_loss(critic_params, batch, y, row_weights, rows):
    """Σ_j ½ Σ_{b in rows} w_b (Q_j(s_b, a_b) − y_b)² / N, N = all 4 rows: a dropped task's rows are
    left out of the sum, not of the batch size (the paper drops its term from the total)."""
    layer = critic_params["params"]["dense"]
    x = jnp.concatenate([batch.obs, batch.action], axis=1)[rows]
    total = 0.0
    for j in range(2):
        q = (x @ layer["kernel"][j] + layer["bias"][j])[:, 0]
        total += 0.5 * jnp.sum(row_weights[rows] * (q - y[rows]) ** 2) / 4
    return total


def critic_loss(critic_params, batch, key, weigh, log_alphas, actor_params, target_params):
    return losses.critic_loss(
        critic_params, jax.tree.map(jnp.asarray, batch), key, networks=NETWORKS, config=CONFIG,
        actor_params=actor_params, target_critic_params=target_params, log_alphas=jnp.asarray(log_alphas),
        weigh=weigh,
    )  # fmt: skip


def test_temperature_weighted_critic_loss_matches_hand_computation(linear_sac):
    actor, critics, targets, batch, log_alphas = linear_sac  # α = (0.5, 2), rows' tasks 0, 1, 0, 1
    key = jax.random.key(7)
    actor_params, critic_params = as_jax(actor, critics)
    _, target_params = as_jax(actor, targets)
    weigh = functools.partial(softmod_sac.temperature_weights, log_alphas=jnp.asarray(log_alphas))
    loss_fn = lambda p: critic_loss(p, batch, key, weigh, log_alphas, actor_params, target_params)
    (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(critic_params)

    # w = T softmax(−log α) = 2 (1/0.5, 1/2) / (2 + 0.5) = (1.6, 0.4): mean 1, the confident task (small α)
    # counts four times the exploring one.
    np.testing.assert_allclose(aux.task_weights, [1.6, 0.4], rtol=1e-6)
    y = hand_target(actor, targets, batch, log_alphas, key)
    q = [np_q(c, batch.obs, batch.action) for c in critics]
    per_row = sum(0.5 * (q_j - y) ** 2 for q_j in q)
    np.testing.assert_allclose(aux.task_losses, [per_row[[0, 2]].mean(), per_row[[1, 3]].mean()], rtol=1e-4)
    row_weights = np.array([1.6, 0.4, 1.6, 0.4])
    np.testing.assert_allclose(loss, np.mean(row_weights * per_row), rtol=1e-4)
    hand = lambda p: hand_weighted_critic_loss(
        p, batch, jnp.asarray(y), jnp.asarray(row_weights), slice(None)
    )
    for got, want in zip(jax.tree.leaves(grads), jax.tree.leaves(jax.grad(hand)(critic_params)), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("bad_reward", [1e4, np.nan], ids=["huge", "nan"])
def test_masked_task_gives_exactly_the_gradient_of_the_other_tasks(bad_reward, linear_sac):
    actor, critics, targets, batch, log_alphas = linear_sac
    batch = batch.replace(reward=np.where(batch.task_id == 1, bad_reward, batch.reward).astype(np.float32))
    key = jax.random.key(7)
    actor_params, critic_params = as_jax(actor, critics)
    _, target_params = as_jax(actor, targets)
    weigh = functools.partial(paco_sac.mask_weights, log_alphas=None, threshold=3e3)
    loss_fn = lambda p: critic_loss(p, batch, key, weigh, log_alphas, actor_params, target_params)
    (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(critic_params)

    np.testing.assert_array_equal(aux.task_weights, [1.0, 0.0])  # task 1's loss ≥ ½ (1e4 − |Q|)² or NaN
    assert not np.all(np.asarray(aux.task_losses[1]) <= 3e3)
    y = hand_target(actor, targets, batch, log_alphas, key)
    kept = np.array([0, 2])  # task 0's rows, computed separately: task 1's rows are not in this loss at all
    hand = lambda p: hand_weighted_critic_loss(p, batch, jnp.asarray(y), jnp.ones(4), kept)
    hand_loss, hand_grads = jax.value_and_grad(hand)(critic_params)
    np.testing.assert_allclose(loss, hand_loss, rtol=1e-5)
    for got, want in zip(jax.tree.leaves(grads), jax.tree.leaves(hand_grads), strict=True):
        assert np.all(np.isfinite(got))
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


def test_weighted_actor_and_temperature_losses_match_hand_computation(linear_sac):
    actor, critics, _, batch, log_alphas = linear_sac
    key = jax.random.key(11)
    actor_params, critic_params = as_jax(actor, critics)
    weights = jnp.array([1.6, 0.4])
    loss, _ = losses.actor_loss(
        actor_params, jax.tree.map(jnp.asarray, batch), key, networks=NETWORKS, config=CONFIG,
        critic_params=critic_params, log_alphas=jnp.asarray(log_alphas), task_weights=weights,
    )  # fmt: skip
    noise = np.asarray(jax.random.normal(key, (4, ACT)), np.float64)
    action, log_prob = np_policy_sample(actor, batch.obs, noise)
    min_q = np.minimum(*(np_q(c, batch.obs, action) for c in critics))
    terms = np.exp(log_alphas)[batch.task_id] * log_prob - min_q
    np.testing.assert_allclose(loss, np.mean(np.array([1.6, 0.4, 1.6, 0.4]) * terms), rtol=1e-4)

    log_prob = jnp.array([-1.0, 0.5, -3.0, -2.5])
    alpha_fn = lambda la, w, form: losses.alpha_loss(
        la, log_prob, jnp.asarray(batch.task_id), target_entropy=TARGET_ENTROPY, task_weights=w, form=form
    )[0]
    # log π + H̄ per row: −3.0, −1.5, −5.0, −4.5 (tasks 0, 1, 0, 1); log α = (−ln 2, ln 2).
    # Log form, row terms −log α_task (log π + H̄) = −3 ln 2, 1.5 ln 2, −5 ln 2, 4.5 ln 2; weighted by
    # (1.6, 0.4): (−4.8 + 0.6 − 8.0 + 1.8) ln 2 / 4 = −2.6 ln 2;
    # ∂/∂log α = (1.6·8.0, 0.4·6.0) / 4 = (3.2, 0.6).
    loss, grad = jax.value_and_grad(alpha_fn)(jnp.asarray(log_alphas), weights, "log_alpha")
    np.testing.assert_allclose(loss, -2.6 * np.log(2.0), rtol=1e-5)
    np.testing.assert_allclose(grad, [3.2, 0.6], rtol=1e-5)
    # Eq. 18's form, row terms −α_task (log π + H̄) as in test_sac_losses: 1.5, 3.0, 2.5, 9.0.
    # Weighted: (2.4 + 1.2 + 4.0 + 3.6) / 4 = 2.8; ∂/∂log α = (1.6·4.0, 0.4·12.0) / 4.
    loss, grad = jax.value_and_grad(alpha_fn)(jnp.asarray(log_alphas), weights, "alpha")
    np.testing.assert_allclose(loss, 2.8, rtol=1e-5)
    np.testing.assert_allclose(grad, [1.6, 1.2], rtol=1e-5)
    # a masked task's temperature gets no gradient
    masked = jax.grad(alpha_fn)(jnp.asarray(log_alphas), jnp.array([1.0, 0.0]), "log_alpha")
    np.testing.assert_allclose(masked, [2.0, 0.0], rtol=1e-5)


# --- PaCo's update ----------------------------------------------------------------------------------

PACO = paco_sac.Config(hidden_sizes=(16, 16), num_components=2)
update = jax.jit(sac.update)


def paco_state(config=PACO):
    """A fresh PaCo agent with every task's composition redrawn, so tasks start apart."""
    state = paco_sac.init(fast_key(0), SPEC, config)

    def redraw(params, seed):
        w = params["params"]["composition"]
        w = jax.random.uniform(jax.random.key(seed), w.shape, minval=0.2, maxval=1.0)
        return {**params, "params": {**params["params"], "composition": w}}

    return state.replace(
        actor_params=redraw(state.actor_params, 1),
        critic_params=redraw(state.critic_params, 2),
        target_critic_params=redraw(state.target_critic_params, 3),
    )


def diverging_batch(reward: float):
    """Task-balanced rows with task 1's rewards replaced by `reward`: its critic loss is far above ε."""
    batch = make_batch(1, [0, 1, 2])
    return batch.replace(reward=np.where(batch.task_id == 1, reward, batch.reward).astype(np.float32))


def test_paco_without_diverged_tasks_is_the_plain_sac_update_bit_for_bit():
    state = paco_state()
    plain = state.replace(config=dataclasses.replace(PACO, loss_threshold=None))
    assert plain.config.task_weighting() is None
    batch, key = make_batch(1, [0, 1, 2]), fast_key(2)
    new, metrics = update(state, batch, key)
    want, want_metrics = update(plain, batch, key)
    assert float(metrics["train/paco_masked_tasks"]) == 0.0
    assert 0 < float(metrics["train/paco_max_task_critic_loss"]) < 3e3
    for got, expected in zip(jax.tree.leaves(new), jax.tree.leaves(want), strict=True):
        np.testing.assert_array_equal(got, expected)
    for name, value in want_metrics.items():
        np.testing.assert_array_equal(metrics[name], value, err_msg=name)


def composition_rows(params):
    """Every network's compositions as [networks, tasks, K]: the actor's, or each stacked critic's."""
    w = np.asarray(params["params"]["composition"], np.float64)
    return w.reshape(-1, *w.shape[-2:])


def mix_coefficient(w):
    """β with w[1] = β w[0] + (1 − β) w[2], by least squares, and the fit's residual."""
    d = w[0] - w[2]
    beta = np.dot(w[1] - w[2], d) / np.dot(d, d)
    return beta, np.abs(w[1] - (beta * w[0] + (1 - beta) * w[2])).max()


def test_paco_masks_a_diverging_task_and_rebuilds_its_compositions():
    state = paco_state()
    new, metrics = update(state, diverging_batch(1e4), fast_key(2))
    assert float(metrics["train/paco_masked_tasks"]) == 1.0
    assert float(metrics["train/paco_max_task_critic_loss"]) > 3e3
    assert np.all(np.isfinite(flat(new)))
    # masked out of the temperature loss: task 1's alpha has no gradient, and Adam's first step is 0
    np.testing.assert_array_equal(np.isclose(new.log_alphas, state.log_alphas), [False, True, False])

    # w-reset: task 1's w becomes one random convex combination of tasks 0 and 2's (post-step) w, the
    # same β in the actor, both critics and both target critics, and in the Adam second moment
    networks = [new.actor_params, new.critic_params, new.target_critic_params]
    adam = [new.actor_opt_state[0], new.critic_opt_state[0]]
    betas = []
    for w in [*(composition_rows(p) for p in networks), *(composition_rows(s.nu) for s in adam)]:
        for net in w:
            beta, residual = mix_coefficient(net)
            assert residual < 1e-6 * np.abs(net).max(), residual
            betas.append(beta)
    assert len(betas) == 1 + 2 + 2 + 1 + 2 and 0.0 < betas[0] < 1.0
    np.testing.assert_allclose(betas, betas[0], rtol=1e-4)
    for s in adam:  # the stale first moment of the rebuilt entries is dropped
        np.testing.assert_array_equal(composition_rows(s.mu)[:, 1], 0.0)
        assert np.all(composition_rows(s.mu)[:, [0, 2]] != 0.0)
    # the reset rewrote task 1's rows and nothing else: without it, the same step leaves the healthy
    # tasks' w and the shared parameter sets as they are now, and task 1's w where it started (no gradient)
    off = state.replace(config=dataclasses.replace(PACO, reset="off"))
    kept, _ = update(off, diverging_batch(1e4), fast_key(2))
    for got, want in zip(
        networks, [kept.actor_params, kept.critic_params, kept.target_critic_params], strict=True
    ):
        np.testing.assert_array_equal(composition_rows(got)[:, [0, 2]], composition_rows(want)[:, [0, 2]])
        np.testing.assert_array_equal(got["params"]["dense_0"]["kernel"], want["params"]["dense_0"]["kernel"])
    np.testing.assert_array_equal(
        composition_rows(kept.actor_params)[:, 1], composition_rows(state.actor_params)[:, 1]
    )


def test_paco_masked_task_data_cannot_move_anything():
    """Mask-out means the diverged task's rows drop out: any rewards there, even NaN, give the same state."""
    state = paco_state()
    reference, _ = update(state, diverging_batch(1e4), fast_key(2))
    for reward in (1e6, np.nan):
        other, metrics = update(state, diverging_batch(reward), fast_key(2))
        assert float(metrics["train/paco_masked_tasks"]) == 1.0
        for got, want in zip(jax.tree.leaves(other), jax.tree.leaves(reference), strict=True):
            np.testing.assert_array_equal(got, want)


def test_paco_update_under_vmap_masks_per_seed():
    """Seeds train in one vmapped program: each seed masks (and resets) its own diverged tasks."""
    states = jax.vmap(lambda k: paco_sac.init(k, SPEC, PACO))(jax.random.split(fast_key(0), 2))
    calm, wild = make_batch(1, [0, 1, 2]), diverging_batch(1e4)
    batches = jax.tree.map(lambda a, b: np.stack([a, b]), calm, wild)
    new, metrics = jax.jit(jax.vmap(sac.update))(states, batches, jax.random.split(fast_key(2), 2))
    np.testing.assert_array_equal(metrics["train/paco_masked_tasks"], [0.0, 1.0])
    assert np.all(np.isfinite(flat(new)))
    np.testing.assert_array_equal(np.isclose(new.log_alphas, states.log_alphas), [[0, 0, 0], [0, 1, 0]])


def test_mean_reset_and_no_healthy_task():
    w = jnp.arange(8.0).reshape(4, 2)  # tasks 1 and 2 diverged: both become ([0, 1] + [6, 7]) / 2
    diverged = jnp.array([False, True, True, False])
    mix = paco_sac.reset_weights(jax.random.key(0), diverged, "mean")
    params = {"params": {"composition": jnp.stack([w, w + 10]), "dense_0": {"kernel": jnp.ones((2, 3))}}}
    reset = paco_sac.remix_compositions(params, diverged, mix)["params"]
    np.testing.assert_array_equal(reset["composition"][0], [[0, 1], [3, 4], [3, 4], [6, 7]])
    np.testing.assert_array_equal(reset["composition"][1, 1], [13, 14])  # each critic its own mean
    assert reset["dense_0"] is params["params"]["dense_0"]
    random_mix = paco_sac.reset_weights(jax.random.key(0), diverged, "interpolate")
    np.testing.assert_allclose(random_mix.sum(axis=1), [0, 1, 1, 0], rtol=1e-6)  # convex rows
    assert np.all(np.asarray(random_mix)[:, [1, 2]] == 0) and np.all(
        np.asarray(random_mix)[[1, 2]][:, [0, 3]] > 0
    )
    assert not np.allclose(random_mix[1], random_mix[2])  # a draw per diverged task
    all_bad = paco_sac.reset_weights(jax.random.key(0), jnp.ones(4, bool), "interpolate")
    np.testing.assert_array_equal(all_bad, 0.0)  # nothing healthy to rebuild from


# --- Soft Modularization's update -------------------------------------------------------------------

SOFTMOD = softmod_sac.Config(hidden_sizes=(16, 16), num_modules=2, module_size=8, routing_sizes=(8, 8))


def test_softmod_equal_temperatures_give_the_plain_mean():
    state = softmod_sac.init(fast_key(0), SPEC, SOFTMOD)
    plain = state.replace(config=dataclasses.replace(SOFTMOD, reweight_by_temperature=False))
    batch, key = make_batch(1, [0, 1, 2]), fast_key(2)
    new, metrics = update(state, batch, key)
    want, _ = update(plain, batch, key)
    np.testing.assert_allclose(metrics["train/softmod_weight_entropy"], np.log(3), rtol=1e-6)
    np.testing.assert_allclose(flat(new), flat(want), rtol=1e-6, atol=1e-7)

    # unequal temperatures: the weights are T softmax(−log α) ∝ 1/α, and the update moves away from the mean
    alphas = np.array([0.1, 0.5, 1.0])
    skewed = state.replace(log_alphas=jnp.log(jnp.asarray(alphas, jnp.float32)))
    new, metrics = update(skewed, batch, key)
    want, _ = update(skewed.replace(config=plain.config), batch, key)
    p = (1 / alphas) / np.sum(1 / alphas)  # (10, 2, 1) / 13
    np.testing.assert_allclose(metrics["train/softmod_weight_entropy"], -np.sum(p * np.log(p)), rtol=1e-5)
    np.testing.assert_allclose(metrics["train/softmod_weight_max"], 3 * 10 / 13, rtol=1e-5)
    assert not np.allclose(flat(new.critic_params), flat(want.critic_params), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(new.log_alphas, want.log_alphas)  # the temperature loss is not re-weighted


# --- configuration ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda: paco_sac.Config(loss_threshold=0.0),
            "loss_threshold must be a finite number > 0 or None, got 0.0",
        ),
        (lambda: paco_sac.Config(loss_threshold=float("inf")), "loss_threshold must be .* got inf"),
        (lambda: paco_sac.Config(reset="zero"), "'zero'; valid: interpolate, mean, off"),
        (lambda: paco_sac.Config(gradient_method="pcgrad"), "'pcgrad' cannot combine .* valid: mean"),
        (lambda: softmod_sac.Config(gradient_method="famo"), "'famo' cannot combine .* valid: mean"),
    ],
    ids=["threshold-zero", "threshold-inf", "reset", "paco-pcgrad", "softmod-famo"],
)
def test_bad_weighting_configs_give_one_line_errors(make, message):
    with pytest.raises(ValueError, match=message) as error:
        make()
    assert len(str(error.value).splitlines()) == 1


def test_weighting_off_allows_gradient_methods_and_defaults_follow_the_papers():
    assert paco_sac.Config(loss_threshold=None, gradient_method="pcgrad").task_weighting() is None
    assert softmod_sac.Config(reweight_by_temperature=False, gradient_method="famo").task_weighting() is None
    assert (paco_sac.Config().loss_threshold, paco_sac.Config().reset) == (3e3, "interpolate")
    assert softmod_sac.Config().reweight_by_temperature
    assert sac.SACConfig().task_weighting() is None

"""SAC losses against numbers derived by hand in NumPy on a 4-row batch with linear networks."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from helpers import ACT, CONFIG, GAMMA, NETWORKS, OBS, TARGET_ENTROPY, as_jax, np_policy_sample, np_q
from mtrl.agents.sac import losses
from mtrl.agents.sac.networks import policy, sample_action


def test_sample_action_matches_hand_log_prob_and_is_stable():
    rng = np.random.default_rng(1)
    mean = rng.normal(size=(5, ACT)).astype(np.float32)
    log_std = rng.uniform(-1, 0.5, size=(5, ACT)).astype(np.float32)
    key = jax.random.key(3)
    action, log_prob = sample_action(jnp.asarray(mean), jnp.asarray(log_std), key)
    noise = np.asarray(jax.random.normal(key, (5, ACT)), np.float64)
    u = mean + np.exp(log_std) * noise
    expected = np.sum(
        -0.5 * noise**2 - log_std - 0.5 * np.log(2 * np.pi) - np.log(1 - np.tanh(u) ** 2), axis=1
    )
    np.testing.assert_allclose(action, np.tanh(u), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(log_prob, expected, rtol=1e-4, atol=1e-4)
    # Saturated tanh: the softplus form stays finite where log(1 - tanh²) would give -inf.
    _, far = sample_action(jnp.full((1, ACT), 30.0), jnp.full((1, ACT), -10.0), key)
    assert np.all(np.isfinite(far))


def test_policy_clamps_log_std():
    actor = {"kernel": np.zeros((OBS, 2 * ACT), np.float32), "bias": np.array([0, 0, -20, 5.0])}
    params = {"params": {"dense": jax.tree.map(jnp.asarray, actor)}}
    _, log_std = policy(NETWORKS, params, jnp.ones((1, OBS)), jnp.zeros((1,), jnp.int32), CONFIG)
    np.testing.assert_allclose(log_std, [[-10.0, 2.0]])


def test_critic_loss_matches_hand_computation(linear_sac):
    actor, critics, targets, batch, log_alphas = linear_sac
    key = jax.random.key(7)
    actor_params, critic_params = as_jax(actor, critics)
    _, target_params = as_jax(actor, targets)
    loss, aux = losses.critic_loss(
        critic_params, jax.tree.map(jnp.asarray, batch), key, networks=NETWORKS, config=CONFIG,
        actor_params=actor_params, target_critic_params=target_params,
        log_alphas=jnp.asarray(log_alphas),
    )  # fmt: skip

    # a' ~ π(·|s') with the loss's own noise draw;
    # y = r + γ (1 − d) (min_j Q̄_j(s', a') − α_task log π(a'|s')); row 2 is terminated, so its
    # target is its reward alone. Loss = Σ_j ½ mean_b (Q_j(s, a) − y)².
    noise = np.asarray(jax.random.normal(key, (4, ACT)), np.float64)
    next_action, next_log_prob = np_policy_sample(actor, batch.next_obs, noise)
    min_target = np.minimum(*(np_q(t, batch.next_obs, next_action) for t in targets))
    alpha = np.exp(log_alphas)[batch.task_id]
    y = batch.reward + GAMMA * (1 - batch.terminated) * (min_target - alpha * next_log_prob)
    q = [np_q(c, batch.obs, batch.action) for c in critics]
    expected = sum(0.5 * np.mean((q_j - y) ** 2) for q_j in q)

    np.testing.assert_allclose(loss, expected, rtol=1e-4)
    np.testing.assert_allclose(aux.target_mean, y.mean(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(aux.q_mean, np.mean(q), rtol=1e-4, atol=1e-5)


def test_actor_loss_matches_hand_computation(linear_sac):
    actor, critics, _, batch, log_alphas = linear_sac
    key = jax.random.key(11)
    actor_params, critic_params = as_jax(actor, critics)
    loss, aux = losses.actor_loss(
        actor_params, jax.tree.map(jnp.asarray, batch), key, networks=NETWORKS, config=CONFIG,
        critic_params=critic_params, log_alphas=jnp.asarray(log_alphas),
    )  # fmt: skip

    # ã = tanh(μ(s) + σ(s) ε); loss = mean_b (α_task log π(ã|s) − min_j Q_j(s, ã)).
    noise = np.asarray(jax.random.normal(key, (4, ACT)), np.float64)
    action, log_prob = np_policy_sample(actor, batch.obs, noise)
    min_q = np.minimum(*(np_q(c, batch.obs, action) for c in critics))
    alpha = np.exp(log_alphas)[batch.task_id]
    expected = np.mean(alpha * log_prob - min_q)

    np.testing.assert_allclose(loss, expected, rtol=1e-4)
    np.testing.assert_allclose(aux.log_prob, log_prob, rtol=1e-4, atol=1e-4)


def test_alpha_loss_and_gradient_match_hand_computation(linear_sac):
    _, _, _, batch, log_alphas = linear_sac
    log_prob = np.array([-1.0, 0.5, -3.0, -2.5], np.float32)
    loss_fn = lambda la: losses.alpha_loss(
        la, jnp.asarray(log_prob), jnp.asarray(batch.task_id), target_entropy=TARGET_ENTROPY
    )[0]
    loss, grad = jax.value_and_grad(loss_fn)(jnp.asarray(log_alphas))

    # J = mean_b −log α_task (log π + H̄) with log α = (−ln 2, ln 2) and H̄ = −2 (the MOORE authors' form;
    # eq. 18's −α (…) would give 4.0 here and gradient (1.0, 3.0)):
    #   log π + H̄ per row (task): 0 (0): −3.0   1 (1): −1.5   2 (0): −5.0   3 (1): −4.5
    #   J = (ln 2 · (−3.0 − 5.0) − ln 2 · (−1.5 − 4.5)) / 4 = −2 ln 2 / 4 = −0.5 ln 2
    # ∂J/∂log α_t = −(sum of task t's (log π + H̄)) / 4: task 0: 8 / 4 = 2.0, task 1: 6 / 4 = 1.5.
    np.testing.assert_allclose(loss, -0.5 * np.log(2.0), rtol=1e-5)
    np.testing.assert_allclose(grad, [2.0, 1.5], rtol=1e-5)

    # form="alpha" (eq. 18, CARE's code): J = mean_b −α_task (log π + H̄) with α = (0.5, 2):
    #   rows: 0: −0.5·(−3.0) = 1.5   1: −2·(−1.5) = 3.0   2: −0.5·(−5.0) = 2.5   3: −2·(−4.5) = 9.0 → J = 4.0
    # ∂J/∂log α_t = the same terms summed over task t's rows, / 4: task 0: 1.0, task 1: 3.0.
    alpha_form = lambda la: losses.alpha_loss(
        la, jnp.asarray(log_prob), jnp.asarray(batch.task_id), target_entropy=TARGET_ENTROPY, form="alpha"
    )[0]
    loss, grad = jax.value_and_grad(alpha_form)(jnp.asarray(log_alphas))
    np.testing.assert_allclose(loss, 4.0, rtol=1e-5)
    np.testing.assert_allclose(grad, [1.0, 3.0], rtol=1e-5)

"""On-policy machinery against independent references: sums by definition, numpy solvers, hand numbers."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree
from mtrl.agents import policy_gradient as pg
from scipy import stats

from mtrl import envs, onpolicy

GAMMA = 0.9


def random_block(seed: int, steps: int = 14, batch: int = 3):
    """Rewards, values and episode ends on a [steps, batch] block with both kinds of episode end."""
    rng = np.random.default_rng(seed)
    rewards = rng.normal(size=(steps, batch)).astype(np.float32)
    values = rng.normal(size=(steps, batch)).astype(np.float32)
    next_values = rng.normal(size=(steps, batch)).astype(np.float32)
    terminated = np.zeros((steps, batch), bool)
    truncated = np.zeros((steps, batch), bool)
    terminated[3, 0] = terminated[9, 1] = True
    truncated[5, 0] = truncated[6, 1] = truncated[10, 2] = True
    # within an episode V(s'_t) is V(s_{t+1}); at its end it is the value of the state it was cut at
    done = terminated | truncated
    next_values[:-1] = np.where(done[:-1], next_values[:-1], values[1:])
    return rewards, values, next_values, terminated, truncated


def episode_end(t: int, done: np.ndarray) -> int:
    """Last step of the episode that step t belongs to (the block's last step if it never ends)."""
    while t < len(done) - 1 and not done[t]:
        t += 1
    return t


def reference_gae(rewards, values, next_values, terminated, truncated, lam):
    """Eq. 16 as the sum it defines: Â_t = Σ_{l=0}^{end-t} (γλ)^l δ_{t+l}, stopped at the episode end."""
    done = terminated | truncated
    out = np.zeros_like(rewards, dtype=np.float64)
    for b in range(rewards.shape[1]):
        delta = rewards[:, b] + GAMMA * (1 - terminated[:, b]) * next_values[:, b] - values[:, b]
        for t in range(len(rewards)):
            end = episode_end(t, done[:, b])
            out[t, b] = sum((GAMMA * lam) ** (u - t) * delta[u] for u in range(t, end + 1))
    return out


def reference_returns(rewards, terminated, truncated, next_values=None):
    """Σ_l γ^l r_{t+l} to the episode end, plus γ^{end-t+1} V(s'_end) if the end is a cut and values given."""
    done = terminated | truncated
    out = np.zeros_like(rewards, dtype=np.float64)
    for b in range(rewards.shape[1]):
        for t in range(len(rewards)):
            end = episode_end(t, done[:, b])
            ret = sum(GAMMA ** (u - t) * rewards[u, b] for u in range(t, end + 1))
            if next_values is not None and not terminated[end, b]:
                ret += GAMMA ** (end - t + 1) * next_values[end, b]
            out[t, b] = ret
    return out


@pytest.mark.parametrize("lam", [0.0, 0.5, 0.95, 1.0])
def test_gae_equals_the_sum_of_eq_16(lam):
    rewards, values, next_values, terminated, truncated = random_block(0)
    got = onpolicy.gae(rewards, values, next_values, terminated, truncated, gamma=GAMMA, lam=lam)
    want = reference_gae(rewards, values, next_values, terminated, truncated, lam)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_gae_special_cases_lambda_0_and_1():
    rewards, values, next_values, terminated, truncated = random_block(1)
    # λ = 0: the one-step TD error; a truncated step bootstraps, a terminated one does not
    delta = rewards + GAMMA * (1 - terminated) * next_values - values
    got0 = onpolicy.gae(rewards, values, next_values, terminated, truncated, gamma=GAMMA, lam=0.0)
    np.testing.assert_allclose(got0, delta, rtol=1e-6, atol=1e-6)
    assert got0[5, 0] == pytest.approx(rewards[5, 0] + GAMMA * next_values[5, 0] - values[5, 0], abs=1e-6)
    assert got0[3, 0] == pytest.approx(rewards[3, 0] - values[3, 0], abs=1e-6)
    # λ = 1: bootstrapped discounted return minus the baseline
    got1 = onpolicy.gae(rewards, values, next_values, terminated, truncated, gamma=GAMMA, lam=1.0)
    want1 = reference_returns(rewards, terminated, truncated, next_values) - values
    np.testing.assert_allclose(got1, want1, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("bootstrap", [False, True])
def test_discounted_returns_equal_the_sum(bootstrap):
    rewards, _, next_values, terminated, truncated = random_block(2)
    nv = next_values if bootstrap else None
    got = onpolicy.discounted_returns(rewards, terminated, truncated, gamma=GAMMA, next_values=nv)
    np.testing.assert_allclose(
        got, reference_returns(rewards, terminated, truncated, nv), rtol=1e-5, atol=1e-5
    )


def test_flat_time_keeps_episodes_apart():
    """GAE over [episodes * time] equals GAE per episode: the truncation flags separate them."""
    rng = np.random.default_rng(3)
    episodes, time, batch = 3, 6, 2
    rewards, values, next_values = (
        rng.normal(size=(episodes, time, batch)).astype(np.float32) for _ in range(3)
    )
    truncated = np.zeros((episodes, time, batch), bool)
    truncated[:, -1] = True
    terminated = np.zeros_like(truncated)
    flat = [x.reshape(episodes * time, batch) for x in (rewards, values, next_values, terminated, truncated)]
    got = onpolicy.gae(*flat, gamma=GAMMA, lam=0.9).reshape(episodes, time, batch)
    per_episode = jax.vmap(functools.partial(onpolicy.gae, gamma=GAMMA, lam=0.9))
    want = per_episode(rewards, values, next_values, terminated, truncated)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_collect_episodes_matches_stepping_by_hand():
    env = envs.make("toy", num_tasks=2, envs_per_task=2)
    spec = env.spec
    network = pg.GaussianPolicy(hidden_sizes=(8,), action_size=spec.action_size, init_std=0.5)
    params = network.init(jax.random.key(0), jnp.zeros((1, spec.obs_size)))

    def policy_fn(params, obs, task_id, key):
        return pg.sample_gaussian(*network.apply(params, obs), key)

    key, num_episodes, length = jax.random.key(7), 3, spec.episode_length
    collect = jax.jit(onpolicy.collect_episodes, static_argnums=(0, 1, 4))
    traj = collect(env, policy_fn, params, key, num_episodes)

    n = spec.num_envs
    assert traj.obs.shape == (num_episodes, length, n, spec.obs_size)
    assert traj.action.shape == (num_episodes, length, n, spec.action_size)
    for name in ("reward", "terminated", "truncated", "success", "log_prob", "task_id"):
        assert getattr(traj, name).shape == (num_episodes, length, n), name
    # episode boundaries: truncation at the last step of every episode only, never a termination
    truncated = np.asarray(traj.truncated)
    assert truncated[:, -1].all() and not truncated[:, :-1].any() and not np.asarray(traj.terminated).any()
    np.testing.assert_array_equal(traj.obs[:, 0, :, :2], 0.0)  # every episode starts at the origin
    np.testing.assert_array_equal(traj.next_obs[:, :-1], traj.obs[:, 1:])
    np.testing.assert_array_equal(traj.task_id, np.broadcast_to(np.repeat(np.arange(2), 2), (3, length, n)))
    mean, log_std = network.apply(params, traj.obs)
    np.testing.assert_allclose(traj.log_prob, pg.gaussian_log_prob(mean, log_std, traj.action), atol=1e-4)

    # replay the recorded actions through the env by hand, from the documented reset key
    state, step = env.reset(jax.random.split(key)[0])
    env_step = jax.jit(env.step)
    rewards, obs = [], []
    for e in range(num_episodes):
        for t in range(length):
            obs.append(step.obs)
            state, step = env_step(state, traj.action[e, t])
            rewards.append(step.reward)
    np.testing.assert_allclose(
        np.stack(rewards).reshape(traj.reward.shape), traj.reward, rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(np.stack(obs).reshape(traj.obs.shape), traj.obs, rtol=1e-5, atol=1e-6)

    with pytest.raises(ValueError, match="num_episodes"):
        onpolicy.collect_episodes(env, policy_fn, params, key, 0)


def test_gaussian_density_entropy_and_kl():
    rng = np.random.default_rng(4)
    mean_p, mean_q, action = rng.normal(size=(3, 5, 2))
    log_std_p, log_std_q = 0.3 * rng.normal(size=(2, 5, 2))
    want_lp = stats.norm.logpdf(action, mean_p, np.exp(log_std_p)).sum(-1)
    np.testing.assert_allclose(pg.gaussian_log_prob(mean_p, log_std_p, action), want_lp, rtol=1e-5)
    want_h = stats.norm.entropy(mean_p, np.exp(log_std_p)).sum(-1)
    np.testing.assert_allclose(pg.gaussian_entropy(log_std_p), want_h, rtol=1e-5)
    # KL(p‖q) = E_p[log p − log q], by quadrature over each (independent) dimension
    grid = np.linspace(-12, 12, 20001)
    sp, sq = np.exp(log_std_p)[..., None], np.exp(log_std_q)[..., None]
    log_p = stats.norm.logpdf(grid, mean_p[..., None], sp)
    log_q = stats.norm.logpdf(grid, mean_q[..., None], sq)
    want_kl = np.trapezoid(np.exp(log_p) * (log_p - log_q), grid, axis=-1).sum(-1)
    np.testing.assert_allclose(pg.gaussian_kl(mean_p, log_std_p, mean_q, log_std_q), want_kl, rtol=1e-4)


def test_linear_baseline_equals_numpy_lstsq():
    rng = np.random.default_rng(5)
    time = np.tile(np.arange(40), 3)
    obs = (rng.normal(size=(120, 4)) * np.array([1.0, 3.0, 8.0, 20.0])).astype(np.float32)  # some beyond ±10
    returns = (obs[:, 0] - 0.1 * obs[:, 1] ** 2 + 0.05 * (40 - time) + rng.normal(size=120)).astype(
        np.float32
    )
    features = pg.linear_baseline_features(jnp.asarray(obs), jnp.asarray(time))
    o = np.clip(obs.astype(np.float64), -10, 10)
    t = time[:, None] / 100.0
    want_features = np.concatenate([o, o**2, t, t**2, t**3, np.ones_like(t)], axis=1)
    np.testing.assert_allclose(features, want_features, rtol=1e-6)

    reg = 1e-5
    weights = pg.fit_linear_baseline(features, jnp.asarray(returns), reg_coeff=reg)
    a = np.concatenate([want_features, math.sqrt(reg) * np.eye(want_features.shape[1])])
    b = np.concatenate([returns.astype(np.float64), np.zeros(want_features.shape[1])])
    want_weights = np.linalg.lstsq(a, b, rcond=None)[0]
    np.testing.assert_allclose(
        pg.linear_baseline_values(weights, features), want_features @ want_weights, rtol=1e-3, atol=1e-3
    )
    # without the regulariser it is ordinary least squares
    ols = np.linalg.lstsq(want_features, returns.astype(np.float64), rcond=None)[0]
    weights = pg.fit_linear_baseline(features, jnp.asarray(returns), reg_coeff=0.0)
    np.testing.assert_allclose(features @ weights, want_features @ ols, rtol=1e-3, atol=1e-3)


def test_mlp_value_baseline_fits_returns():
    rng = np.random.default_rng(6)
    obs = jnp.asarray(rng.normal(size=(64, 3)), jnp.float32)
    returns = jnp.sin(obs[:, 0]) + obs[:, 1]
    network = pg.ValueNetwork(hidden_sizes=(32, 32))
    params = network.init(jax.random.key(0), obs)
    optimizer = optax.adam(1e-2)
    loss_fn = functools.partial(pg.value_loss, network=network)

    @jax.jit
    def fit(params):
        def body(carry, _):
            params, opt_state = carry
            grads = jax.grad(lambda p: loss_fn(p, obs, returns)[0])(params)
            updates, opt_state = optimizer.update(grads, opt_state)
            return (optax.apply_updates(params, updates), opt_state), None

        return jax.lax.scan(body, (params, optimizer.init(params)), length=300)[0][0]

    before = loss_fn(params, obs, returns)[0]
    after = loss_fn(fit(params), obs, returns)[0]
    assert after < 0.02 * before, (before, after)


def test_conjugate_gradient_solves_spd_system():
    rng = np.random.default_rng(7)
    m = rng.normal(size=(10, 10))
    a = m @ m.T + 0.5 * np.eye(10)
    b = rng.normal(size=10)
    x = pg.conjugate_gradient(
        lambda v: jnp.asarray(a, jnp.float32) @ v, jnp.asarray(b, jnp.float32), iters=30
    )
    np.testing.assert_allclose(x, np.linalg.solve(a, b), rtol=1e-3, atol=1e-3)
    assert np.linalg.norm(a @ np.asarray(x, np.float64) - b) < 1e-3 * np.linalg.norm(b)
    # a zero right-hand side stays exactly zero (no 0/0)
    zero = pg.conjugate_gradient(lambda v: jnp.asarray(a, jnp.float32) @ v, jnp.zeros(10), iters=5)
    np.testing.assert_array_equal(zero, 0.0)


OBS, ACT, ROWS = 3, 2, 16


def linear_policy(params, obs):
    """A tiny Gaussian policy: mean = obs W + b, state-independent log-std."""
    mean = obs @ params["w"] + params["b"]
    return mean, jnp.broadcast_to(params["log_std"], mean.shape)


def tiny_problem(seed: int):
    k = jax.random.split(jax.random.key(seed), 5)
    params = {
        "w": 0.5 * jax.random.normal(k[0], (OBS, ACT)),
        "b": 0.1 * jax.random.normal(k[1], (ACT,)),
        "log_std": jnp.array([-0.3, 0.2]),
    }
    obs = jax.random.normal(k[2], (ROWS, OBS))
    mean, log_std = linear_policy(params, obs)
    action, log_prob = pg.sample_gaussian(mean, log_std, k[3])
    advantage = jax.random.normal(k[4], (ROWS,))
    batch = pg.PolicyBatch(obs=obs, action=action, advantage=advantage, old_log_prob=log_prob)
    kl_fn = functools.partial(pg.mean_kl, obs=obs, dist_fn=linear_policy, old_mean=mean, old_log_std=log_std)
    return params, batch, kl_fn


def test_fisher_vector_product_equals_explicit_fisher():
    params, batch, kl_fn = tiny_problem(0)
    flat, unravel = ravel_pytree(params)
    v = jax.random.normal(jax.random.key(1), flat.shape)
    got = jax.jit(functools.partial(pg.fisher_vector_product, kl_fn, damping=0.1))(params, v)
    hessian = jax.jit(jax.hessian(lambda p: kl_fn(unravel(p))))(flat)
    np.testing.assert_allclose(got, hessian @ v + 0.1 * v, rtol=1e-4, atol=1e-5)
    # closed form for a diagonal Gaussian in (μ, log σ): F = E_s[J_μᵀ diag(σ⁻²) J_μ + 2 J_logσᵀ J_logσ]
    jac_mean, jac_log_std = jax.jit(jax.jacobian(lambda p: linear_policy(unravel(p), batch.obs)))(flat)
    inv_var = jnp.exp(-2 * params["log_std"])
    fisher = (
        jnp.einsum("bap,a,baq->pq", jac_mean, inv_var, jac_mean)
        + 2 * jnp.einsum("bap,baq->pq", jac_log_std, jac_log_std)
    ) / ROWS
    np.testing.assert_allclose(got, fisher @ v + 0.1 * v, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("max_kl", [1e-3, 0.05])
def test_trpo_step_respects_kl_and_improves_surrogate(max_kl):
    params, batch, kl_fn = tiny_problem(2)
    loss_fn = functools.partial(pg.trpo_surrogate, batch=batch, dist_fn=linear_policy)
    step = jax.jit(functools.partial(pg.trpo_step, loss_fn=loss_fn, kl_fn=kl_fn, max_kl=max_kl))
    new_params, info = step(params)
    assert info.step_fraction > 0
    assert kl_fn(new_params) <= max_kl
    assert loss_fn(new_params) < loss_fn(params)
    np.testing.assert_allclose(info.loss_after, loss_fn(new_params), rtol=1e-5)
    np.testing.assert_allclose(info.kl, kl_fn(new_params), rtol=1e-4)
    if max_kl == 1e-3:  # quadratic model is accurate: the full step is taken and lands at KL ≈ δ
        assert info.step_fraction == 1.0
        assert 0.8 * max_kl < info.kl <= max_kl


def test_trpo_keeps_params_when_nothing_improves():
    params, batch, kl_fn = tiny_problem(3)
    batch = batch.replace(advantage=jnp.zeros(ROWS))
    loss_fn = functools.partial(pg.trpo_surrogate, batch=batch, dist_fn=linear_policy)
    new_params, info = pg.trpo_step(params, loss_fn, kl_fn, max_kl=0.01)
    assert info.step_fraction == 0.0
    jax.tree.map(np.testing.assert_array_equal, new_params, params)
    with pytest.raises(ValueError, match="max_kl"):
        pg.trpo_step(params, loss_fn, kl_fn, max_kl=0.0)


def test_ppo_clip_objective_by_hand():
    ratio = np.array([0.5, 1.1, 1.5, 0.9, 1.3, 0.7], np.float32)
    advantage = np.array([1.0, 2.0, 1.0, -1.0, -2.0, -1.0], np.float32)
    old_log_prob = np.linspace(-2, 0, 6).astype(np.float32)
    log_prob = jnp.asarray(old_log_prob + np.log(ratio))
    # ε = 0.2, rows: min(rA, clip(r)A)
    #   0.5·1 = 0.5 vs 0.8·1            → 0.5   (below range, A > 0: unclipped counts)
    #   1.1·2 = 2.2 inside the range     → 2.2
    #   1.5·1 = 1.5 vs 1.2·1            → 1.2   (clipped: no gain beyond 1 + ε)
    #   0.9·−1 = −0.9 inside             → −0.9
    #   1.3·−2 = −2.6 vs 1.2·−2 = −2.4   → −2.6  (harm is always counted)
    #   0.7·−1 = −0.7 vs 0.8·−1 = −0.8   → −0.8  (clipped)
    want = (0.5 + 2.2 + 1.2 - 0.9 - 2.6 - 0.8) / 6
    objective = functools.partial(pg.ppo_clip_objective, clip_eps=0.2)
    got = objective(log_prob, old_log_prob, advantage)
    assert got == pytest.approx(want, abs=1e-5)
    # d/d log π of r·A is r·A; clipped rows (2 and 5) give no gradient
    grad = jax.grad(objective)(log_prob, old_log_prob, advantage)
    want_grad = ratio * advantage / 6 * np.array([1, 1, 0, 1, 1, 0])
    np.testing.assert_allclose(grad, want_grad, rtol=1e-5, atol=1e-7)


def test_ppo_loss_adds_entropy_bonus():
    params, batch, _ = tiny_problem(4)
    coef = 0.01
    loss, aux = pg.ppo_loss(params, batch, dist_fn=linear_policy, clip_eps=0.2, entropy_coef=coef)
    # at the behaviour policy every ratio is 1: L^CLIP = mean(A); entropy = Σ_a (log σ_a + ½ log 2πe)
    entropy = float(np.sum(params["log_std"]) + ACT * 0.5 * math.log(2 * math.pi * math.e))
    assert loss == pytest.approx(-(float(batch.advantage.mean()) + coef * entropy), abs=1e-5)
    assert aux.entropy == pytest.approx(entropy, abs=1e-5)
    assert aux.approx_kl == pytest.approx(0.0, abs=1e-5) and aux.clip_fraction == 0.0


@pytest.mark.parametrize("binding", ["kl", "loss"])
def test_trpo_line_search_takes_the_largest_admissible_fraction(binding):
    """F = I and g = (1, −2, 2), |g| = 3, δ = 0.1: the full step d = −g √(2δ)/3 has |d|² = 0.2 = 2δ, and
    g·d = −3√0.2 ≈ −1.342. Along fractions f = 0.8^k of it:
    - "kl": true KL = ½|d|² + 25|d|⁴ = 0.1 f² + f⁴ > δ until f = 0.8³ = 0.512 (0.0262 + 0.0687 = 0.095);
    - "loss": loss = g·d + 10|d|² = −1.342 f + 2 f² < 0 only for f < 0.671, first at f = 0.8² = 0.64."""
    params = {"x": jnp.zeros(3)}
    g = jnp.array([1.0, -2.0, 2.0])
    quartic = 25.0 if binding == "kl" else 0.0
    curvature = 10.0 if binding == "loss" else 0.0

    def kl_fn(p):
        sq = jnp.sum(p["x"] ** 2)
        return 0.5 * sq + quartic * sq**2

    def loss_fn(p):
        return g @ p["x"] + curvature * jnp.sum(p["x"] ** 2)

    new_params, info = pg.trpo_step(params, loss_fn, kl_fn, max_kl=0.1, damping=0.0)
    fraction = 0.512 if binding == "kl" else 0.64
    assert info.step_fraction == pytest.approx(fraction, rel=1e-5)
    np.testing.assert_allclose(new_params["x"], -g * math.sqrt(0.2) / 3 * fraction, rtol=1e-4)
    assert info.kl <= 0.1 and info.loss_after < info.loss_before

"""MAML-TRPO / MAML-PPO: the inner step and `adapt` against a NumPy float64 linear-Gaussian reference, the
second-order meta-gradient against central finite differences, the TRPO outer step's trust region, the
two recipes field by field and what each recipe setting does (policy shape, std bounds, raw advantages,
TRPO objective), `train_iteration` under jit and vmap (vmapped seeds equal separate runs), meta-test
learning on toy-ml (and, slow, ML1 push-v3), bad config."""

from __future__ import annotations

import dataclasses
import functools
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree
from mtrl.agents import maml
from mtrl.agents.policy_gradient import PolicyBatch, gaussian_log_prob

from mtrl import envs
from mtrl.meta_evaluation import MetaAgent, meta_evaluate
from mtrl.types import EnvSpec, Transition

OBS, ACT = 3, 2


def _spec(num_envs):
    return EnvSpec(
        name="tiny", obs_size=OBS, action_size=ACT, task_names=("t",), envs_per_task=num_envs,
        episode_length=5, goals_per_task=1,
    )  # fmt: skip


SPEC = _spec(1)

# ---------------------------------------------------------------- NumPy float64 linear-Gaussian reference
# Policy μ(o) = o K + b, σ = exp(s) (GaussianPolicy without hidden layers). With z = (a − μ)/σ:
#   log π = Σ_d −½ z_d² − s_d − ½ log 2π
#   ∂ log π/∂b_d = z_d/σ_d,  ∂ log π/∂K_jd = o_j z_d/σ_d,  ∂ log π/∂s_d = z_d² − 1.


def np_log_prob(K, b, s, obs, action):
    z = (action - (obs @ K + b)) / np.exp(s)
    return np.sum(-0.5 * z**2 - s - 0.5 * np.log(2 * np.pi), axis=-1)


def np_inner_step(K, b, s, obs, action, adv, lr):
    """θ − α ∇θ L, L = −mean(log π Â), with the hand-derived score above."""
    z = (action - (obs @ K + b)) / np.exp(s)
    w = adv[:, None] / len(adv)  # ∂L/∂log π_n = −Â_n / n
    g_b = -np.sum(w * z / np.exp(s), axis=0)
    g_K = -obs.T @ (w * z / np.exp(s))
    g_s = -np.sum(w * (z**2 - 1.0), axis=0)
    return K - lr * g_K, b - lr * g_b, s - lr * g_s


def np_params(params):
    p = params["params"]
    return (np.asarray(p["mean"]["kernel"], np.float64), np.asarray(p["mean"]["bias"], np.float64),
            np.asarray(p["log_std"], np.float64))  # fmt: skip


def to_params(K, b, s):
    return {"params": {"mean": {"kernel": jnp.asarray(K), "bias": jnp.asarray(b)}, "log_std": jnp.asarray(s)}}


def linear_state(key, **config):
    """A linear-Gaussian MAML state in float64 (call inside `jax.enable_x64(True)`): the MAML paper's
    policy (linear mean, state-independent std) without hidden layers."""
    state = maml.init(key, SPEC, maml.maml_paper_config(hidden_sizes=(), **config))
    K, b, s = np_params(state.params)
    rng = np.random.default_rng(0)
    return state.replace(params=to_params(K + 0.3 * rng.normal(size=K.shape), b, s - 0.2))


def random_batch(rng, n, envs=None, steps=None):
    lead = tuple(x for x in (envs, steps) if x is not None)
    return PolicyBatch(
        obs=jnp.asarray(rng.normal(size=(*lead, n, OBS))),
        action=jnp.asarray(rng.normal(size=(*lead, n, ACT))),
        advantage=jnp.asarray(rng.normal(size=(*lead, n))),
        old_log_prob=jnp.asarray(rng.normal(size=(*lead, n)) - 3.0),
    )


def test_inner_step_equals_the_hand_derived_policy_gradient_step():
    with jax.enable_x64(True):
        state = linear_state(jax.random.key(0))
        batch = random_batch(np.random.default_rng(1), 40)
        adapted = maml.inner_step(state.params, batch, policy=state.policy, lr=0.1)
        data = (np.asarray(batch.obs), np.asarray(batch.action), np.asarray(batch.advantage))
        expected = np_inner_step(*np_params(state.params), *data, 0.1)
        for got, want in zip(np_params(adapted), expected, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
        assert not np.allclose(np_params(adapted)[0], np_params(state.params)[0])


def np_advantages(obs, reward, gamma, reg):
    """Â = G − b of N whole episodes (`obs` [N, T, obs], `reward` [N, T]), flattened: G_t = Σ γ^k r (cut at
    episode ends), b a ridge fit of G on [o, o², t, t², t³, 1] (o clipped to ±10, t = step/100) solved by
    the normal equations in float64 (garage LinearFeatureBaseline)."""
    n, T = reward.shape
    returns = np.zeros((n, T))
    for e in range(n):
        g = 0.0
        for t in reversed(range(T)):
            g = reward[e, t] + gamma * g
            returns[e, t] = g
    o = np.clip(obs, -10, 10).reshape(n * T, -1)
    t = np.tile(np.arange(T), n)[:, None] / 100.0
    F = np.concatenate([o, o**2, t, t**2, t**3, np.ones_like(t)], axis=1)
    G = returns.ravel()
    w = np.linalg.solve(F.T @ F + reg * np.eye(F.shape[1]), F.T @ G)
    return G - F @ w


def test_adapt_equals_numpy_returns_ridge_baseline_and_inner_step():
    """`adapt` on [envs, N, T] episodes: per env, G_t = Σ γ^k r (cut at episode ends), a ridge fit of G on
    [o, o², t, t², t³, 1] (o clipped to ±10, t = step/100; normal equations in float64), Â = G − b
    standardised, then the hand-derived inner step from that env's context."""
    envs_, n, T, gamma, lr, reg = 2, 3, 5, 0.9, 0.05, 1e-5
    rng = np.random.default_rng(2)
    with jax.enable_x64(True):
        state = linear_state(jax.random.key(1), gamma=gamma, inner_lr=lr, baseline_reg=reg)
        episodes = Transition(
            obs=jnp.asarray(rng.normal(size=(envs_, n, T, OBS)) * 4),
            action=jnp.asarray(rng.normal(size=(envs_, n, T, ACT))),
            reward=jnp.asarray(rng.normal(size=(envs_, n, T))),
            next_obs=jnp.asarray(rng.normal(size=(envs_, n, T, OBS))),
            terminated=jnp.zeros((envs_, n, T)),
            task_id=jnp.zeros((envs_, n, T), jnp.int32),
        )
        context = maml.init_adaptation(state, _spec(envs_), jax.random.key(0))
        # make the envs' contexts differ, so per-env adaptation is checked
        context = jax.tree.map(
            lambda x: x * jnp.arange(1.0, envs_ + 1).reshape(-1, *[1] * (x.ndim - 1)), context
        )
        adapted = maml.adapt(state, context, episodes, jax.random.key(0))
        for i in range(envs_):
            obs, reward = np.asarray(episodes.obs[i]), np.asarray(episodes.reward[i])
            adv = np_advantages(obs, reward, gamma, reg)
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
            K, b, s = (x[i] for x in np_params(context))
            action = np.asarray(episodes.action[i]).reshape(n * T, ACT)
            expected = np_inner_step(K, b, s, obs.reshape(n * T, OBS), action, adv, lr)
            got = (x[i] for x in np_params(adapted))
            for g_, w_ in zip(got, expected, strict=True):
                np.testing.assert_allclose(g_, w_, rtol=1e-7, atol=1e-9)


def test_meta_gradient_matches_central_finite_differences_of_a_numpy_meta_objective():
    """∇θ of the post-adaptation surrogate through two inner steps (two envs) against central differences
    of an independent NumPy J(θ) = −mean_i mean[exp(log π_θ'_i − log π_old) Â']; also far from the
    first-order approximation (∇ at θ' applied as if dθ'/dθ = I), so dropped second-order terms would fail."""
    lr, envs_, steps = 0.3, 2, 2
    rng = np.random.default_rng(3)
    with jax.enable_x64(True):
        state = linear_state(jax.random.key(2), inner_lr=lr)
        inner = random_batch(rng, 20, envs=envs_, steps=steps)
        outer = random_batch(rng, 20, envs=envs_)
        meta_grad = jax.jit(jax.grad(functools.partial(maml.meta_loss, policy=state.policy, lr=lr)))
        grad = meta_grad(state.params, inner, outer)
        flat, unravel = ravel_pytree(grad)
        inner_np = jax.tree.map(np.asarray, inner)
        outer_np = jax.tree.map(np.asarray, outer)

        def objective(theta_flat):
            K, b, s = np_params(unravel(jnp.asarray(theta_flat)))
            total = 0.0
            for i in range(envs_):
                Ki, bi, si = K, b, s
                for k in range(steps):
                    Ki, bi, si = np_inner_step(
                        Ki, bi, si, inner_np.obs[i, k], inner_np.action[i, k], inner_np.advantage[i, k], lr
                    )
                logp = np_log_prob(Ki, bi, si, outer_np.obs[i], outer_np.action[i])
                total += -np.mean(np.exp(logp - outer_np.old_log_prob[i]) * outer_np.advantage[i])
            return total / envs_

        theta0 = np.asarray(ravel_pytree(state.params)[0])
        eps = 1e-6
        basis = np.eye(len(theta0))
        fd = np.array(
            [(objective(theta0 + eps * e) - objective(theta0 - eps * e)) / (2 * eps) for e in basis]
        )
        np.testing.assert_allclose(np.asarray(flat), fd, rtol=1e-6, atol=1e-8)

        def first_order(params):
            adapted = jax.vmap(lambda b: maml.adapt_params(params, b, policy=state.policy, lr=lr))(inner)
            adapted = jax.lax.stop_gradient(adapted)

            def at(p):  # gradient w.r.t. the adapted params, then averaged over envs as θ's gradient
                mean, log_std = jax.vmap(state.policy.apply)(p, outer.obs)
                ratio = jnp.exp(gaussian_log_prob(mean, log_std, outer.action) - outer.old_log_prob)
                return -jnp.mean(ratio * outer.advantage)

            return jax.tree.map(lambda g: g.sum(0), jax.grad(at)(adapted))

        fo = np.asarray(ravel_pytree(first_order(state.params))[0])
        assert np.abs(fo - fd).max() > 1e3 * np.abs(np.asarray(flat) - fd).max()


@pytest.mark.parametrize("objective", ["log_likelihood", "likelihood_ratio"])
def test_trpo_outer_step_keeps_post_adaptation_kl_within_the_limit_and_improves_the_surrogate(objective):
    max_kl = 0.005
    rng = np.random.default_rng(4)
    config = maml.Config(hidden_sizes=(8,), max_kl=max_kl, inner_lr=0.1, trpo_objective=objective)
    state = maml.init(jax.random.key(3), SPEC, config)
    inner = random_batch(rng, 64, envs=3, steps=1)
    outer = random_batch(rng, 64, envs=3)
    old_mean, old_log_std = maml.adapted_dist(state.params, inner, outer.obs, policy=state.policy, lr=0.1)
    # on-policy: the behaviour log-densities are those of the adapted policies before the step
    outer = outer.replace(old_log_prob=gaussian_log_prob(old_mean, old_log_std, outer.action))
    new_state, metrics = jax.jit(maml.outer_update)(state, inner, outer)
    mean, log_std = maml.adapted_dist(new_state.params, inner, outer.obs, policy=state.policy, lr=0.1)
    # closed-form KL(old ‖ new) of diagonal Gaussians in float64, averaged over envs and states
    sp, sq = np.exp(np.float64(old_log_std)), np.exp(np.float64(log_std))
    dm = np.float64(old_mean) - np.float64(mean)
    kl = np.mean(np.sum(np.log(sq / sp) + (sp**2 + dm**2) / (2 * sq**2) - 0.5, axis=-1))
    assert 0 < kl <= max_kl * (1 + 1e-4)
    np.testing.assert_allclose(float(metrics["train/kl"]), kl, rtol=1e-3)
    loss = functools.partial(
        maml.meta_loss, inner=inner, outer=outer, policy=state.policy, lr=0.1, objective=objective
    )
    assert float(loss(new_state.params)) < float(loss(state.params)) - 1e-4
    assert float(metrics["train/step_fraction"]) > 0
    np.testing.assert_allclose(float(metrics["train/surrogate_before"]), float(loss(state.params)), rtol=1e-6)


def test_trpo_objectives_share_the_on_policy_gradient_but_not_their_values():
    """garage's meta-objective −E[log π_θ'(a|s) Â] and MAML's surrogate −E[π_θ'/π_old Â] have one gradient
    where π_old is the adapted policy (so TRPO's direction is the same) but different values (what the
    line search compares), in float64 against NumPy."""
    lr = 0.3
    rng = np.random.default_rng(8)
    with jax.enable_x64(True):
        state = linear_state(jax.random.key(5), inner_lr=lr)
        inner = random_batch(rng, 20, envs=2, steps=1)
        outer = random_batch(rng, 20, envs=2)
        mean, log_std = maml.adapted_dist(state.params, inner, outer.obs, policy=state.policy, lr=lr)
        outer = outer.replace(old_log_prob=gaussian_log_prob(mean, log_std, outer.action))
        kw = dict(inner=inner, outer=outer, policy=state.policy, lr=lr)
        log_lik = functools.partial(maml.meta_loss, objective="log_likelihood", **kw)
        ratio = functools.partial(maml.meta_loss, objective="likelihood_ratio", **kw)
        g_ll, g_ratio = (ravel_pytree(jax.grad(f)(state.params))[0] for f in (log_lik, ratio))
        np.testing.assert_allclose(g_ll, g_ratio, rtol=1e-10, atol=1e-12)
        # NumPy values: each env's adapted linear policy by the hand-derived inner step, its log-densities
        inner_np, outer_np = jax.tree.map(np.asarray, (inner, outer))
        logp = []
        for i in range(2):
            data = (inner_np.obs[i, 0], inner_np.action[i, 0], inner_np.advantage[i, 0])
            adapted = np_inner_step(*np_params(state.params), *data, lr)
            logp.append(np_log_prob(*adapted, outer_np.obs[i], outer_np.action[i]))
        np.testing.assert_allclose(np.stack(logp), outer_np.old_log_prob, rtol=1e-10)
        want_ll = -np.mean(np.stack(logp) * outer_np.advantage)
        want_ratio = -np.mean(outer_np.advantage)  # ratio 1 on-policy
        assert float(log_lik(state.params)) == pytest.approx(want_ll, rel=1e-10)
        assert float(ratio(state.params)) == pytest.approx(want_ratio, rel=1e-10)
        assert abs(want_ll - want_ratio) > 0.1


# ---------------------------------------------------------------- the two recipes


def test_default_config_is_the_meta_world_paper_recipe():
    """garage@merge-mw-v2-examples metaworld_examples/maml_trpo_metaworld_ml10.py (MAMLTRPO's defaults for
    what it leaves out), field by field."""
    assert dataclasses.asdict(maml.Config()) == dict(
        outer="trpo", hidden_sizes=(128, 128), activation="tanh", output_tanh=True, std_head=True,
        min_std=0.5, max_std=1.5, init_std=1.0, inner_lr=1e-4, inner_steps=1, episodes_per_task=10,
        gamma=0.99, normalize_advantages=False, baseline_reg=1e-5, trpo_objective="log_likelihood",
        max_kl=0.01, cg_iters=10, cg_damping=1e-5, backtrack_ratio=0.8, max_backtracks=15, outer_lr=1e-3,
        clip_eps=0.5, ppo_epochs=5,
    )  # fmt: skip


def test_maml_paper_config_is_the_maml_paper_recipe():
    """cbfinn/maml_rl (cluster_maml_trpo_cheetah.py, maml_minimal_gauss_mlp_policy.py, maml_npo.py)."""
    paper = dataclasses.asdict(maml.maml_paper_config())
    assert paper == dataclasses.asdict(maml.Config()) | dict(
        hidden_sizes=(100, 100), activation="relu", output_tanh=False, std_head=False, min_std=1e-6,
        max_std=None, inner_lr=0.1, episodes_per_task=20, normalize_advantages=True,
        trpo_objective="likelihood_ratio",
    )  # fmt: skip
    assert maml.maml_paper_config(inner_lr=0.5).inner_lr == 0.5


def np_policy(params, obs, config):
    """The Gaussian policy's (mean, log-std) in float64 NumPy from its parameters and the recipe."""
    p = jax.tree.map(lambda x: np.asarray(x, np.float64), params["params"])
    act = np.tanh if config.activation == "tanh" else (lambda x: np.maximum(x, 0.0))
    h = np.asarray(obs, np.float64)
    for i in range(len(config.hidden_sizes)):
        h = act(h @ p[f"dense_{i}"]["kernel"] + p[f"dense_{i}"]["bias"])
    out = np.tanh if config.output_tanh else (lambda x: x)
    mean = out(h @ p["mean"]["kernel"] + p["mean"]["bias"])
    if config.std_head:
        log_std = out(h @ p["log_std_head"]["kernel"] + p["log_std_head"]["bias"])
    else:
        log_std = np.broadcast_to(p["log_std"], mean.shape)
    low = -np.inf if config.min_std is None else np.log(config.min_std)
    high = np.inf if config.max_std is None else np.log(config.max_std)
    return mean, np.clip(log_std, low, high)


@pytest.mark.parametrize("recipe", ["meta_world", "maml_paper"])
def test_policy_is_the_recipes_network(recipe):
    """Meta-World recipe: 128×128 tanh trunk, tanh mean and tanh log-std head clipped to std ∈ [0.5, 1.5]
    (the std depends on the state); MAML paper: 100×100 ReLU, linear mean, one learned log-std. Against a
    NumPy forward pass, with the head's bias pushed past each std bound; Glorot-uniform kernels."""
    config = maml.Config() if recipe == "meta_world" else maml.maml_paper_config()
    state = maml.init(jax.random.key(0), SPEC, config)
    params = state.params["params"]
    assert params["dense_1"]["kernel"].shape == (config.hidden_sizes[0], config.hidden_sizes[1])
    limit = np.sqrt(6 / (OBS + config.hidden_sizes[0]))  # Glorot uniform: |W| <= sqrt(6 / (fan_in + fan_out))
    assert limit * 0.9 < np.abs(params["dense_0"]["kernel"]).max() <= limit
    obs = jax.random.normal(jax.random.key(1), (64, OBS)) * 20
    for bias in (0.0, 5.0, -5.0):
        p = state.params
        if config.std_head:
            head = {**params["log_std_head"], "bias": jnp.full((ACT,), bias)}
            p = {"params": {**params, "log_std_head": head}}
        mean, log_std = state.policy.apply(p, obs)
        want_mean, want_log_std = np_policy(p, obs, config)
        np.testing.assert_allclose(mean, want_mean, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(log_std, want_log_std, rtol=1e-5, atol=1e-6)
    std = np.exp(np.asarray(state.policy.apply(state.params, obs)[1]))
    if recipe == "meta_world":
        assert np.abs(mean).max() <= 1 and np.all((0.5 - 1e-6 <= std) & (std <= 1.5 + 1e-6))
        assert std.std(axis=0).min() > 1e-3
        np.testing.assert_allclose(np.exp(log_std), 0.5, rtol=1e-6)  # bias −5: clipped at the floor
    else:
        assert np.abs(mean).max() > 1 and std.std(axis=0).max() == 0


def test_raw_advantages_without_centring():
    """The Meta-World recipe (center_adv=False) adapts on Â = G − b as it is; the MAML paper's standardises
    it (mean 0, std 1), against the NumPy returns and ridge baseline."""
    n, T = 3, 5
    rng = np.random.default_rng(6)
    obs = rng.normal(size=(n, T, OBS)) * 3
    reward = rng.normal(size=(n, T)) + 2.0
    raw = np_advantages(obs, reward, 0.99, 1e-5)
    with jax.enable_x64(True):
        time_ = jnp.arange(n * T) % T
        truncated = time_ == T - 1
        args = (jnp.asarray(obs.reshape(n * T, OBS)), jnp.asarray(reward.reshape(-1)), jnp.zeros(n * T, bool))
        got = maml.advantages(*args, truncated, time_, maml.Config())
        np.testing.assert_allclose(got, raw, rtol=1e-6, atol=1e-8)
        assert abs(raw.std() - 1) > 0.1
        centred = maml.advantages(*args, truncated, time_, maml.maml_paper_config())
        np.testing.assert_allclose(centred, (raw - raw.mean()) / (raw.std() + 1e-8), rtol=1e-6, atol=1e-8)


# ---------------------------------------------------------------- train_iteration


class CountingEnv:
    """Counts `reset` calls while tracing: one per train_iteration (goals hold across the phases)."""

    def __init__(self, env):
        self.env, self.spec, self.resets = env, env.spec, 0

    def reset(self, key):
        self.resets += 1
        return self.env.reset(key)

    def step(self, state, action):
        return self.env.step(state, action)


def check_iteration(env, state, new_state, metrics):
    assert env.resets == 1
    assert int(new_state.iteration) == 1
    assert {"train/success", "train/episode_return", "train/post_adaptation_success"} <= set(metrics)
    for name, value in metrics.items():
        assert value.shape == () and value.dtype == jnp.float32 and np.isfinite(value), name
    assert not np.allclose(ravel_pytree(state.params)[0], ravel_pytree(new_state.params)[0])


def test_maml_ppo_train_iteration_under_jit():
    config = maml.Config(outer="ppo", hidden_sizes=(8,), episodes_per_task=1)
    env = CountingEnv(envs.make("toy-ml", envs_per_task=3, episodes_per_goal=maml.episodes_per_goal(config)))
    state = maml.init(jax.random.key(0), env.spec, config)
    new_state, metrics = jax.jit(functools.partial(maml.train_iteration, env))(state, jax.random.key(1))
    check_iteration(env, state, new_state, metrics)
    assert int(new_state.opt_state[0].count) == config.ppo_epochs


def test_maml_trpo_train_iteration_under_jit_and_vmap_over_seeds_like_separate_runs():
    """Two inner steps (three phases of one episode on one goal); vmap over (state, key) of two seeds gives
    each seed's separate run to float precision.

    Why this once needed rtol 1e-2: everything up to TRPO's Fisher-vector products is bitwise the same
    under vmap, but the batched products differ from the single-seed ones in the last bits (XLA sums the
    batched reductions in another order), and conjugate gradient multiplies such differences by up to the
    condition number of the damped Fisher. With garage's damping (1e-5) the Fisher of this tiny problem
    (8 hidden units, three envs with one 40-step episode per phase) is rank-deficient, eigenvalues from
    1e-5 to ~6, and the tenth CG iterates of the two runs were measured to differ by 5e-5 to 2e-4
    relative. That is conditioning, not vmap. Damping 0.1 (κ ≲ 60) was enough on one CPU, not on another
    (an AVX-512 Xeon, 2026-12-05: parameters 2.7e-5 apart after an update of 0.076, metrics in the 5th
    digit); with damping 1 the two agree to 7e-9 there, float32 precision, which is asserted here."""
    config = maml.Config(hidden_sizes=(8,), episodes_per_task=1, inner_steps=2, inner_lr=0.1, cg_damping=1.0)
    env = CountingEnv(envs.make("toy-ml", envs_per_task=3, episodes_per_goal=maml.episodes_per_goal(config)))
    assert maml.episodes_per_goal(config) == 3
    assert maml.vector_steps_per_iteration(env.spec, config) == 3 * env.spec.episode_length
    step = functools.partial(maml.train_iteration, env)
    states = [maml.init(jax.random.key(s), env.spec, config) for s in (0, 1)]
    keys = jax.random.split(jax.random.key(9), 2)
    alone = [jax.jit(step)(states[i], keys[i]) for i in range(2)]
    check_iteration(env, states[0], *alone[0])
    stacked = jax.tree.map(lambda *x: jnp.stack(x), *states)
    batched, metrics = jax.jit(jax.vmap(step))(stacked, keys)
    assert metrics["train/success"].shape == (2,)
    for i in range(2):
        got, want = (
            ravel_pytree(jax.tree.map(lambda x, i=i: x[i], batched.params))[0],
            ravel_pytree(alone[i][0].params)[0],
        )
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
        for name, value in alone[i][1].items():
            np.testing.assert_allclose(metrics[name][i], value, rtol=1e-5, atol=1e-7, err_msg=name)
    assert not np.allclose(
        ravel_pytree(alone[0][0].params)[0], ravel_pytree(alone[1][0].params)[0], atol=1e-2
    )


# ---------------------------------------------------------------- learning


def meta_test(env, state, n, m):
    """Meta-test success after adapting on n episodes, and "un-adapted": the same protocol with an `adapt`
    that returns the context unchanged, i.e. the meta-parameters' mean action on the scored episodes."""
    adapted = MetaAgent("maml", maml.init_adaptation, maml.act, maml.adapt)
    plain = MetaAgent("maml-unadapted", maml.init_adaptation, maml.act, lambda state, context, e, k: context)
    kw = dict(adaptation_episodes=n, scored_episodes=m)
    after = meta_evaluate(env, adapted, state, jax.random.key(7), **kw).success.mean()
    before = meta_evaluate(env, plain, state, jax.random.key(7), **kw).success.mean()
    return float(after), float(before)


def test_maml_trpo_learns_to_adapt_on_toy_ml_in_one_episode():
    """Meta-train on toy-ml (goal hidden, inferable only from rewards), then on the 50 held-out test goals:
    one adaptation episode (N=1), one inner step, 2 deterministic scored episodes per goal. The MAML paper's
    recipe (toy-sized): its inner step of 0.1 on standardised advantages adapts in one episode, where the
    Meta-World recipe's 1e-4 on raw advantages barely moves the policy here."""
    n, m, iterations = 1, 2, 150
    config = maml.maml_paper_config(hidden_sizes=(32, 32), episodes_per_task=n)
    env = envs.make("toy-ml", envs_per_task=20, episodes_per_goal=maml.episodes_per_goal(config))
    state = maml.init(jax.random.key(0), env.spec, config)
    step = jax.jit(functools.partial(maml.train_iteration, env))
    for i in range(iterations):
        state, metrics = step(state, jax.random.key(i))
    test = envs.make(
        "toy-ml", split="test", envs_per_task=50, goal_sampling="sequential", episodes_per_goal=n + m
    )
    after, before = meta_test(test, state, n, m)
    print(f"toy-ml meta-test success: adapted {after:.2f}, un-adapted {before:.2f}")
    assert after >= 0.3 and after >= before + 0.2


@pytest.mark.slow
def test_maml_trpo_on_ml1_push():
    """ML1 push-v3 (native backend; the goal is hidden and the puck must be carried to it, so sweeping the
    workspace does not succeed, unlike reach), meta-batch 10, 4 episodes per phase (cut to fit ~15 min on 2
    cores), then meta-test on 10 held-out goals with N=4 adaptation and M=3 scored episodes (un-adapted = the
    meta-parameters' mean action, as above). The MAML paper's inner step (lr 0.1 on standardised advantages):
    the Meta-World recipe's 1e-4 barely moves the policy in one step, which is the mechanism checked here.
    Measured (2026-12-04, 8.4 min): meta-test adapted 0.10 vs un-adapted 0.10, train post-adaptation success
    0.025 — this check FAILS at this budget (on reach-v3, before the recipe change: 0.50 vs 0.20)."""
    iterations, n, m, goals = 25, 4, 3, 10
    config = maml.maml_paper_config(episodes_per_task=n)
    env = envs.make(
        "ML1", task="push-v3", backend="native", envs_per_task=10,
        episodes_per_goal=maml.episodes_per_goal(config),
    )  # fmt: skip
    state = maml.init(jax.random.key(0), env.spec, config)
    step = jax.jit(functools.partial(maml.train_iteration, env))
    start = time.time()
    for i in range(iterations):
        state, metrics = step(state, jax.random.key(i))
        print(i, {k: round(float(v), 3) for k, v in metrics.items() if "success" in k or "return" in k})
    minutes = (time.time() - start) / 60
    test = envs.make(
        "ML1", task="push-v3", split="test", backend="native", envs_per_task=10, goal_sampling="sequential",
        episodes_per_goal=n + m,
    )  # fmt: skip
    adapted = MetaAgent("maml", maml.init_adaptation, maml.act, maml.adapt)
    plain = MetaAgent("maml-unadapted", maml.init_adaptation, maml.act, lambda state, context, e, k: context)
    kw = dict(adaptation_episodes=n, scored_episodes=m, goals=goals)
    after = float(meta_evaluate(test, adapted, state, jax.random.key(7), **kw).success.mean())
    before = float(meta_evaluate(test, plain, state, jax.random.key(7), **kw).success.mean())
    steps = iterations * maml.vector_steps_per_iteration(env.spec, config) * env.spec.num_envs
    print(f"ML1 push-v3: {steps} env steps of training in {minutes:.1f} min")
    print(f"ML1 push-v3 meta-test success: adapted {after:.2f}, un-adapted {before:.2f}")
    assert float(metrics["train/post_adaptation_success"]) > 0 and after > before


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(outer="sgd"), "unknown outer 'sgd'; valid: trpo, ppo"),
        (dict(hidden_sizes=(0,)), "hidden_sizes must be positive"),
        (dict(inner_steps=0), "inner_steps must be an int >= 1, got 0"),
        (dict(episodes_per_task=1.5), "episodes_per_task must be an int >= 1"),
        (dict(inner_lr=0.0), "inner_lr must be > 0, got 0.0"),
        (dict(max_kl=-1.0), "max_kl must be > 0"),
        (dict(gamma=1.5), r"gamma must be in \[0, 1\], got 1.5"),
        (dict(backtrack_ratio=1.0), r"backtrack_ratio must be in \(0, 1\)"),
        (dict(baseline_reg=-1.0), "baseline_reg must be >= 0"),
        (dict(activation="gelu"), "unknown activation 'gelu'; valid: tanh, relu"),
        (dict(trpo_objective="vpg"), "unknown trpo_objective 'vpg'; valid: log_likelihood, likelihood_ratio"),
        (dict(min_std=0.0), "min_std must be None or > 0, got 0.0"),
        (dict(max_std=0.4), "min_std must be < max_std, got min_std=0.5, max_std=0.4"),
    ],
)
def test_bad_config_is_one_line(kwargs, message):
    with pytest.raises(ValueError, match=message) as err:
        maml.Config(**kwargs)
    assert "\n" not in str(err.value)

"""PEARL: the posterior and KL against NumPy / numerical integration, where the encoder's gradient comes from,
per-goal replay, train_iteration under jit and vmap, and learning checks (toy-ml in CI, ML1 push-v3 slow)."""

from __future__ import annotations

import dataclasses
import functools
import re
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from mtrl.agents import pearl

from mtrl import envs
from mtrl.meta_evaluation import MetaAgent, meta_evaluate
from mtrl.types import Transition

# Small networks; gamma 0.9 suits 40-step episodes; s' in the context makes the toy goal easier to infer;
# Adam at 1e-3 (not 3e-4) learns the toy in 60 iterations for every seed tried (0.4-0.58 vs 0 at 50).
TOY = pearl.Config(
    hidden_sizes=(64, 64), encoder_hidden_sizes=(64, 64), latent_size=4, prior_episodes=1,
    extra_posterior_episodes=1, updates_per_iteration=50, meta_batch_size=8, batch_size=128,
    embedding_batch_size=64, replay_capacity_per_goal=400, reward_scale=10.0, gamma=0.9,
    use_next_obs_in_context=True, actor_lr=1e-3, critic_lr=1e-3, value_lr=1e-3, encoder_lr=1e-3,
)  # fmt: skip


@pytest.fixture(scope="module")
def toy():
    """The toy-ml training env and one jitted train_iteration shared by the tests (one compile)."""
    env = envs.make("toy-ml", envs_per_task=10, episodes_per_goal=pearl.episodes_per_goal(TOY))
    return env, jax.jit(functools.partial(pearl.train_iteration, env))


# ---------------------------------------------------------------- 1. the posterior and the KL term


def numpy_product(mu, var, mask):
    """N(0, 1) · Π_n N(μ_n, σ²_n)^{m_n} per latent dimension, by summing natural parameters in float64."""
    mu, var, mask = (np.asarray(x, np.float64) for x in (mu, var, mask))
    precision = 1.0 + np.sum(mask[..., None] / var, axis=-2)
    return np.sum(mask[..., None] * mu / var, axis=-2) / precision, 1.0 / precision


def test_product_of_gaussians_matches_numpy_and_a_grid_density():
    rng = np.random.default_rng(0)
    mu = rng.normal(size=(3, 6, 2)).astype(np.float32)
    var = rng.uniform(0.2, 3.0, size=(3, 6, 2)).astype(np.float32)
    mask = (rng.uniform(size=(3, 6)) < 0.6).astype(np.float32)
    mask[2] = 0.0  # an empty context: exactly the prior
    mean, post_var = pearl.product_of_gaussians(mu, var, mask)
    want_mean, want_var = numpy_product(mu, var, mask)
    np.testing.assert_allclose(mean, want_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(post_var, want_var, rtol=1e-5)
    np.testing.assert_array_equal(mean[2], 0.0)
    np.testing.assert_array_equal(post_var[2], 1.0)
    # brute force: multiply the densities (prior included) on a grid, normalise, take moments
    z = np.linspace(-8, 8, 200_001)
    log_density = -0.5 * z**2 + sum(
        -0.5 * (z - mu[0, n, 1]) ** 2 / var[0, n, 1] for n in range(6) if mask[0, n]
    )
    p = np.exp(log_density - log_density.max())
    p /= p.sum()
    grid_mean = np.sum(p * z)
    np.testing.assert_allclose(mean[0, 1], grid_mean, atol=1e-5)
    np.testing.assert_allclose(post_var[0, 1], np.sum(p * (z - grid_mean) ** 2), rtol=1e-4)


def test_posterior_of_the_encoder_and_adapt_use_every_transition(toy):
    spec = toy[0].spec
    state = pearl.init(jax.random.key(0), spec, TOY)
    e = spec.num_envs
    rng = np.random.default_rng(1)
    n, t = 2, 5  # adaptation episodes [envs, N, T]
    episodes = Transition(
        obs=rng.normal(size=(e, n, t, 2)).astype(np.float32),
        action=rng.uniform(-1, 1, size=(e, n, t, 2)).astype(np.float32),
        reward=rng.normal(size=(e, n, t)).astype(np.float32),
        next_obs=rng.normal(size=(e, n, t, 2)).astype(np.float32),
        terminated=np.zeros((e, n, t), np.float32),
        task_id=np.zeros((e, n, t), np.int32),
    )
    context = pearl.adapt(
        state, pearl.init_adaptation(state, spec, jax.random.key(1)), episodes, jax.random.key(2)
    )
    # each factor from the encoder by hand: features (s, a, r, s'), μ_n and softplus σ²_n
    features = np.concatenate(
        [episodes.obs, episodes.action, episodes.reward[..., None], episodes.next_obs], axis=-1
    ).reshape(e, n * t, -1)
    out = np.asarray(state.networks.encoder.apply(state.encoder_params, features), np.float64)
    mu, raw = out[..., : TOY.latent_size], out[..., TOY.latent_size :]
    want_mean, want_var = numpy_product(mu, np.log1p(np.exp(raw)), np.ones((e, n * t)))
    np.testing.assert_allclose(context.mean, want_mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(context.var, want_var, rtol=1e-4)
    assert context.z.shape == (e, TOY.latent_size)


def test_kl_to_the_prior_matches_numerical_integration():
    rng = np.random.default_rng(2)
    mean = rng.normal(size=(4, 3)).astype(np.float32)
    var = rng.uniform(0.05, 2.5, size=(4, 3)).astype(np.float32)
    got = np.asarray(pearl.kl_to_prior(mean, var))
    z = np.linspace(-15, 15, 300_001)
    dz = z[1] - z[0]
    want = np.zeros(4)
    for b in range(4):
        for d in range(3):  # KL of a diagonal Gaussian is the sum of the 1-D KLs: ∫ q log(q / p) dz
            m, v = float(mean[b, d]), float(var[b, d])
            log_q = -0.5 * (z - m) ** 2 / v - 0.5 * np.log(2 * np.pi * v)
            log_p = -0.5 * z**2 - 0.5 * np.log(2 * np.pi)
            want[b] += np.sum(np.exp(log_q) * (log_q - log_p)) * dz
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------- 2. the encoder learns from the critic only


def test_encoder_gradient_comes_from_the_critic_loss_only(toy):
    env, step = toy
    state, _ = step(pearl.init(jax.random.key(0), env.spec, TOY), jax.random.key(1))
    key = jax.random.key(3)
    batch_key, z_key, pi_key = jax.random.split(key, 3)  # as `update` splits its key
    _, batch, context, mask = pearl.sample_goal_batches(state, batch_key)
    nets, cfg = state.networks, state.config

    def z_of(encoder_params):
        mean, var = pearl.posterior(nets, encoder_params, context, mask, cfg)
        return pearl.sample_latent(mean, var, z_key)

    def actor_of_encoder(encoder_params):
        return pearl.actor_loss(
            state.actor_params, batch, z_of(encoder_params), pi_key, networks=nets, config=cfg,
            critic_params=state.critic_params,
        )[0]  # fmt: skip

    def value_of_encoder(encoder_params):
        return pearl.value_loss(
            state.value_params, batch, z_of(encoder_params), pi_key, networks=nets, config=cfg,
            actor_params=state.actor_params, critic_params=state.critic_params,
        )[0]  # fmt: skip

    for fn in (actor_of_encoder, value_of_encoder):
        grads = jax.tree.leaves(jax.jit(jax.grad(fn))(state.encoder_params))
        assert all(np.all(np.asarray(g) == 0.0) for g in grads)

    def critic_objective(trainable):
        return pearl.critic_loss(
            trainable, batch, context, mask, z_key, networks=nets, config=cfg,
            target_value_params=state.target_value_params,
        )[0]  # fmt: skip

    trainable = {"critic": state.critic_params, "encoder": state.encoder_params}
    encoder_grad = jax.jit(jax.grad(critic_objective))(trainable)["encoder"]
    assert sum(float(jnp.abs(g).sum()) for g in jax.tree.leaves(encoder_grad)) > 0
    # One update from fresh Adam moments moves each encoder weight by -lr · g / (|g| + eps): exactly the
    # critic objective's gradient sets the encoder's step.
    fresh = state.replace(critic_opt_state=pearl.make_optimizers(cfg).critic.init(trainable))
    new_state, _ = jax.jit(pearl.update)(fresh, key)
    for old, new, g in zip(
        jax.tree.leaves(state.encoder_params), jax.tree.leaves(new_state.encoder_params),
        jax.tree.leaves(encoder_grad), strict=True,
    ):  # fmt: skip
        g = np.asarray(g, np.float64)
        adam_step = -cfg.encoder_lr * g / (np.abs(g) + 1e-8)
        np.testing.assert_allclose(np.asarray(new) - np.asarray(old), adam_step, rtol=2e-3, atol=1e-9)


# ---------------------------------------------------------------- 3. per-goal replay


def test_context_and_rl_batches_come_from_one_goal_slot(toy):
    spec = toy[0].spec
    cfg = dataclasses.replace(TOY, meta_batch_size=64, batch_size=16, embedding_batch_size=8)
    state = pearl.init(jax.random.key(0), spec, TOY).replace(config=cfg)  # buffers do not depend on these
    T = spec.episode_length

    def episodes(slots, offset):
        """One episode per env whose every row carries its slot id (+ offset) in obs[0]."""
        tag = (np.asarray(slots, np.float32) + offset)[:, None, None] * np.ones((1, T, 2), np.float32)
        zeros = np.zeros((len(slots), T), np.float32)
        return Transition(tag, tag, zeros, tag, zeros, np.zeros((len(slots), T), np.int32))

    slots = jnp.array([3, 17, 17, 40])  # two envs share goal 17: both episodes are kept
    replay = pearl.add_episodes(state.replay, slots, episodes(slots, 0.0))
    context = pearl.add_episodes(state.context_replay, slots, episodes(slots, 0.5))
    np.testing.assert_array_equal(np.flatnonzero(replay.size), [3, 17, 40])
    assert int(replay.size[17]) == 2 * T and int(replay.size[3]) == T
    state = state.replace(replay=replay, context_replay=context)
    chosen, batch, features, mask = pearl.sample_goal_batches(state, jax.random.key(5))
    chosen = np.asarray(chosen)
    assert set(chosen) == {3, 17, 40}  # only filled slots, all of them in 64 draws
    np.testing.assert_array_equal(
        np.asarray(batch.obs[:, 0]).reshape(64, 16), np.repeat(chosen[:, None], 16, 1)
    )
    np.testing.assert_array_equal(np.asarray(features[..., 0]), np.repeat(chosen[:, None] + 0.5, 8, 1))
    np.testing.assert_array_equal(mask, 1.0)


def test_train_iteration_stores_each_episode_under_the_goal_it_was_played_on(toy):
    env, step = toy
    state, _ = step(pearl.init(jax.random.key(0), env.spec, TOY), jax.random.key(1))
    T, goals = env.spec.episode_length, np.asarray(env.goals)[0]  # one task: slot = goal index
    size, ctx_size = np.asarray(state.replay.size), np.asarray(state.context_replay.size)
    visited = np.flatnonzero(size)
    assert size.sum() == env.spec.num_envs * pearl.episodes_per_goal(TOY) * T
    # the context buffer holds this iteration's prior episodes per visited goal (the latest T rows when
    # several envs drew the same goal)
    prior_rows = size * TOY.prior_episodes // pearl.episodes_per_goal(TOY)
    np.testing.assert_array_equal(ctx_size, np.minimum(prior_rows, TOY.prior_episodes * T))
    for slot in visited:
        rows = slice(0, size[slot])
        next_pos = np.asarray(state.replay.data.next_obs[slot, rows])
        dist = np.linalg.norm(next_pos - goals[slot], axis=-1)
        want = 1.0 - dist + (dist < env.config.success_radius)  # toy-ml's reward of that goal
        np.testing.assert_allclose(state.replay.data.reward[slot, rows], want, rtol=1e-5, atol=1e-5)
        ctx_pos = np.asarray(state.context_replay.data.next_obs[slot, : ctx_size[slot]])
        dist = np.linalg.norm(ctx_pos - goals[slot], axis=-1)
        want = 1.0 - dist + (dist < env.config.success_radius)
        np.testing.assert_allclose(state.context_replay.data.reward[slot, : ctx_size[slot]], want, atol=1e-5)


# ---------------------------------------------------------------- 4. jit and vmap


def test_train_iteration_under_jit_changes_the_state_and_reports_finite_metrics(toy):
    env, step = toy
    state = pearl.init(jax.random.key(0), env.spec, TOY)
    new, metrics = step(state, jax.random.key(1))
    for name in (
        "train/success",
        "train/episode_return",
        "train/critic_loss",
        "train/actor_loss",
        "train/kl",
    ):
        assert metrics[name].shape == () and metrics[name].dtype == jnp.float32
    assert all(np.isfinite(float(v)) for v in metrics.values())
    assert int(new.iteration) == 1
    assert jax.tree.structure(new) == jax.tree.structure(state)
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(new), strict=True):
        assert a.shape == b.shape
    changed = lambda x, y: any(
        not np.array_equal(p, q) for p, q in zip(jax.tree.leaves(x), jax.tree.leaves(y), strict=True)
    )
    for field in ("actor_params", "critic_params", "value_params", "target_value_params", "encoder_params"):
        assert changed(getattr(state, field), getattr(new, field)), field
    assert pearl.vector_steps_per_iteration(env.spec, TOY) == 2 * env.spec.episode_length


def test_train_iteration_vmaps_over_two_seeds():
    env = envs.make("toy-ml", envs_per_task=2, episodes_per_goal=pearl.episodes_per_goal(TOY))
    cfg = dataclasses.replace(TOY, updates_per_iteration=2)
    keys = jax.random.split(jax.random.key(0), 2)
    states = jax.vmap(lambda k: pearl.init(k, env.spec, cfg))(keys)
    step = jax.jit(jax.vmap(functools.partial(pearl.train_iteration, env)))
    states, metrics = step(states, jax.random.split(jax.random.key(1), 2))
    assert metrics["train/critic_loss"].shape == (2,)
    assert all(np.isfinite(np.asarray(v)).all() for v in metrics.values())
    np.testing.assert_array_equal(states.iteration, [1, 1])
    assert not np.array_equal(states.replay.data.obs[0], states.replay.data.obs[1])


# ---------------------------------------------------------------- 5, 6. learning checks


def _keep_the_prior(state, context, episodes, key):
    """Un-adapted: `adapt` returns the prior unchanged, so scored episodes act with its mean z = 0."""
    return context


def _wrong_goal_posterior(state, context, episodes, key):
    """Adapted on another goal: the posterior of the episodes of the env 5 slots away (another goal)."""
    return pearl.adapt(state, context, jax.tree.map(lambda x: jnp.roll(x, 5, axis=0), episodes), key)


ADAPTATIONS = {"adapted": pearl.adapt, "prior": _keep_the_prior, "wrong_goal": _wrong_goal_posterior}


def meta_test(env_name, state, n, m, goals, key, baselines=("prior",), **make_kwargs):
    """{name: (success, mean scored return)} of PEARL on the held-out goals after adaptation ("adapted") and
    for each baseline: "prior" (an `adapt` that keeps the prior, so scored episodes use its mean z = 0 and
    the mean action), "wrong_goal" (the posterior from another env's adaptation episodes)."""
    test_env = envs.make(
        env_name, split="test", goal_sampling="sequential", episodes_per_goal=n + m, **make_kwargs
    )
    results = {}
    for name in ("adapted", *baselines):
        agent = MetaAgent(f"pearl-{name}", pearl.init_adaptation, pearl.act, ADAPTATIONS[name])
        r = meta_evaluate(test_env, agent, state, key, adaptation_episodes=n, scored_episodes=m, goals=goals)
        results[name] = (float(r.success.mean()), float(r.returns.mean()))
    return results


def test_meta_test_success_on_toy_ml_after_adaptation_beats_the_prior(toy):
    """toy-ml hides the goal (a point on a half circle; the observation is the position only), so only the
    posterior over z can tell the policy where to go.

    Seed 0: init key and iteration keys from `split(key(0))`, 60 iterations (120 episodes per env, 3000
    gradient steps), then the 50 held-out test goals with meta-test key 7: N=1 exploration episode with z ~
    prior, the posterior from its 40 transitions, M=2 deterministic scored episodes with z = the posterior
    mean. Baselines, same protocol: "prior" keeps the prior (z = 0), "wrong_goal" takes the posterior of
    another goal's adaptation episode (so a posterior that carries no goal information would tie).

    Measured (seeds 0-4; meta-test key 7, then key 8), success / scored return:
      adapted     0.44 0.64 0.54 0.46 0.38 / 39.6 50.0 40.1 41.7 32.1  (key 8: 0.50 0.58 0.68 0.56 0.46)
      prior       0.00 0.00 0.00 0.00 0.00 / 11.4 12.6 14.0 16.3 12.2  (key 8: the same, z = 0)
      wrong_goal  0.08 0.30 0.18 0.16 0.12 / 17.0 25.8 17.6 18.2 17.1  (key 8: 0.14 0.22 0.14 0.18 0.14)
    Smallest gaps over those 10 evaluations: 0.38 success and 19.9 return over the prior, 0.26 success and
    15.0 return over the wrong goal. Asserted (about two thirds of those): adapted >= 0.3, >= prior + 0.25
    and >= wrong_goal + 0.15 in success, >= prior + 12 and >= wrong_goal + 8 in return. About 30 s of
    training and 15 s of compiling the three evaluations on 2 idle cores."""
    env, step = toy
    init_key, train_key = jax.random.split(jax.random.key(0))
    state = pearl.init(init_key, env.spec, TOY)
    start = time.time()
    for i in range(60):
        state, _ = step(state, jax.random.fold_in(train_key, i))
    results = meta_test(
        "toy-ml", state, 1, 2, 50, jax.random.key(7), baselines=("prior", "wrong_goal"), envs_per_task=10
    )
    (adapted, adapted_return), (prior, prior_return), (wrong, wrong_return) = results.values()
    print(
        f"toy-ml meta-test success / return: adapted {adapted:.3f} / {adapted_return:.1f}, "
        f"prior {prior:.3f} / {prior_return:.1f}, wrong goal {wrong:.3f} / {wrong_return:.1f} "
        f"({time.time() - start:.0f} s)"
    )
    assert adapted >= 0.3
    assert adapted >= prior + 0.25 and adapted_return >= prior_return + 12
    assert adapted >= wrong + 0.15 and adapted_return >= wrong_return + 8


ML1_PUSH = pearl.Config(
    hidden_sizes=(128, 128), encoder_hidden_sizes=(128, 128), latent_size=5, prior_episodes=1,
    extra_posterior_episodes=1, updates_per_iteration=100, meta_batch_size=8, batch_size=128,
    embedding_batch_size=128, replay_capacity_per_goal=2000, reward_scale=10.0, use_next_obs_in_context=True,
)  # fmt: skip


@pytest.mark.slow
def test_meta_test_on_ml1_push_after_adaptation_beats_the_prior():
    """ML1 push-v3 (native; the goal is hidden and the puck must be carried to it, so sweeping the workspace
    does not succeed, unlike reach), 10 envs, 100 iterations = 1M env steps and 10k gradient steps (5-12 min
    on 2 shared cores). Meta-test on 20 held-out goals, N=1 adaptation and M=1 scored episode. The budget is
    far from garage's, so the gap in return, and success not below the prior's, are asserted. Measured
    (2026-12-04, 8.9 min): success 0.00 adapted vs 0.00 prior, return 46 vs 65 — this check FAILS at this
    budget: PEARL does not learn push in 1M steps with these small networks (on reach-v3 it had: 0.10 vs
    0.00, return 2380 vs 145). It needs a GPU-scale budget to say more."""
    env = envs.make(
        "ML1", task="push-v3", backend="native", envs_per_task=10,
        episodes_per_goal=pearl.episodes_per_goal(ML1_PUSH),
    )  # fmt: skip
    step = jax.jit(functools.partial(pearl.train_iteration, env))
    state = pearl.init(jax.random.key(0), env.spec, ML1_PUSH)
    start = time.time()
    for i in range(100):
        state, metrics = step(state, jax.random.key(i + 2))
        assert all(np.isfinite(float(v)) for v in metrics.values())
    results = meta_test(
        "ML1", state, 1, 1, 20, jax.random.key(7), task="push-v3", backend="native", envs_per_task=10
    )
    (adapted, adapted_return), (prior, prior_return) = results["adapted"], results["prior"]
    print(
        f"ML1 push-v3 meta-test: success adapted {adapted:.3f} / un-adapted {prior:.3f}, return "
        f"{adapted_return:.0f} / {prior_return:.0f} ({(time.time() - start) / 60:.1f} min)"
    )
    assert adapted >= prior and adapted_return >= 2 * prior_return


# ---------------------------------------------------------------- 7. bad input


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("latent_size", 0), ("prior_episodes", 0), ("extra_posterior_episodes", -1), ("meta_batch_size", 0),
        ("batch_size", 2.5), ("kl_lambda", -0.1), ("reward_scale", 0.0), ("gamma", 1.5), ("tau", 0.0),
        ("hidden_sizes", ()), ("encoder_hidden_sizes", (8, 0)), ("log_std_min", 3.0),
    ],
)  # fmt: skip
def test_bad_config_raises_one_line_naming_the_field(field, value):
    with pytest.raises(ValueError) as info:
        pearl.Config(**{field: value})
    message = str(info.value)
    assert "\n" not in message and field in message


def test_replay_smaller_than_an_episode_is_refused():
    spec = envs.make("toy-ml").spec
    with pytest.raises(
        ValueError, match=re.escape("replay_capacity_per_goal must be >= the episode length 40")
    ):
        pearl.init(jax.random.key(0), spec, pearl.Config(replay_capacity_per_goal=10))

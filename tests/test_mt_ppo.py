"""MT-PPO against independent references: a NumPy GAE and returns, the clip property of eq. 7, the two
recipes field by field and what each recipe setting does (std bounds, the shared std head, the 256×256
baseline and its penalised L-BFGS fit, the max-entropy reward, raw advantages, whole-episode minibatches,
held goals, early stopping), and learning checks."""

from __future__ import annotations

import dataclasses
import functools
import math
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from mtrl.agents import mt_ppo
from mtrl.agents import policy_gradient as pg

from mtrl import envs, evaluation, onpolicy
from mtrl.types import Agent

SMALL = mt_ppo.garage_example_config(
    policy_hidden_sizes=(32, 32),
    value_hidden_sizes=(32, 32),
    policy_lr=3e-3,
    value_lr=3e-3,
    epochs=4,
    minibatch_size=200,
)
"""A toy-sized garage example: the toy env is solved in a few iterations with larger steps than 2.5e-4."""

PAPER_SMALL = mt_ppo.Config(policy_hidden_sizes=(32, 32), value_hidden_sizes=(32, 32), policy_lr=3e-3)
"""The Meta-World paper's recipe with toy-sized networks and a larger step."""

AGENT = Agent("mt_ppo", None, mt_ppo.act, None)  # evaluation.run_episodes needs only `act`


def toy_env(envs_per_task: int = 2, **kwargs):
    return envs.make("toy", num_tasks=4, envs_per_task=envs_per_task, **kwargs)


def tiny_trajectory(spec, seed: int = 0) -> onpolicy.Trajectory:
    """[episodes=2, time=3, envs=2] of random steps; every episode truncates at its last step, and env 1's
    first episode terminates early at t = 1 (a termination cuts the return, a truncation bootstraps)."""
    rng = np.random.default_rng(seed)
    episodes, time_, n = 2, 3, 2
    obs = rng.normal(size=(episodes, time_, n, spec.obs_size)).astype(np.float32)
    next_obs = rng.normal(size=obs.shape).astype(np.float32)
    truncated = np.zeros((episodes, time_, n), bool)
    truncated[:, -1] = True
    terminated = np.zeros_like(truncated)
    terminated[0, 1, 1] = True
    return onpolicy.Trajectory(
        obs=jnp.asarray(obs),
        action=jnp.asarray(rng.normal(size=(episodes, time_, n, spec.action_size)), jnp.float32),
        reward=jnp.asarray(rng.normal(size=(episodes, time_, n)), jnp.float32),
        terminated=jnp.asarray(terminated),
        truncated=jnp.asarray(truncated),
        success=jnp.zeros((episodes, time_, n), bool),
        log_prob=jnp.asarray(rng.normal(size=(episodes, time_, n)), jnp.float32),
        next_obs=jnp.asarray(next_obs),
        task_id=jnp.zeros((episodes, time_, n), jnp.int32),
    )


def numpy_gae(rewards, values, next_values, terminated, truncated, gamma, lam, bootstrap=True):
    """GAE per env by the backward recursion, in float64: Â_t = δ_t + γλ Â_{t+1} unless step t ends an
    episode; δ_t = r_t + γ V(s'_t) − V(s_t), with V(s'_t) dropped after a termination, and after a
    truncation too unless `bootstrap`."""
    steps, n = rewards.shape
    out = np.zeros((steps, n))
    for b in range(n):
        following = 0.0
        for t in reversed(range(steps)):
            cut = terminated[t, b] or (truncated[t, b] and not bootstrap)
            delta = rewards[t, b] + gamma * (0.0 if cut else next_values[t, b]) - values[t, b]
            ended = terminated[t, b] or truncated[t, b] or t == steps - 1
            following = delta + (0.0 if ended else gamma * lam * following)
            out[t, b] = following
    return out


def numpy_returns(rewards, next_values, terminated, truncated, gamma, bootstrap=False):
    """G_t = r_t + γ G_{t+1} within an episode; at its end 0, or V(s'_t) at a truncation if `bootstrap`."""
    steps, n = rewards.shape
    out = np.zeros((steps, n))
    for b in range(n):
        following = 0.0
        for t in reversed(range(steps)):
            ended = terminated[t, b] or truncated[t, b] or t == steps - 1
            if ended:
                following = next_values[t, b] if bootstrap and not terminated[t, b] else 0.0
            following = rewards[t, b] + gamma * following
            out[t, b] = following
    return out


@pytest.mark.parametrize(
    "bootstrap, target, entropy",
    [(False, "monte_carlo", 0.0), (False, "monte_carlo", 0.3), (True, "monte_carlo", 0.0),
     (True, "lambda_return", 0.0), (False, "lambda_return", 0.3)],
)  # fmt: skip
def test_advantages_and_targets_equal_numpy_on_a_tiny_trajectory(bootstrap, target, entropy):
    """GAE of r − c·log π(a|s) (the max-entropy reward, c = `entropy`), cut or bootstrapped at the time
    limit, and the baseline's targets (discounted returns or λ-returns), against float64 NumPy."""
    spec = toy_env().spec
    config = dataclasses.replace(
        PAPER_SMALL,
        gamma=0.9,
        gae_lambda=0.8,
        bootstrap_truncation=bootstrap,
        value_target=target,
        max_entropy_coef=entropy,
    )
    state = mt_ppo.init(jax.random.key(0), spec, config)
    # a non-identity baseline normalisation, as after a fit
    norm = mt_ppo.Normalizer(jnp.full(spec.obs_size, 0.3), jnp.full(spec.obs_size, 2.0), 1.5, 3.0)
    state = state.replace(value_normalizer=norm)
    traj = tiny_trajectory(spec)
    advantages, targets = mt_ppo.estimate_advantages(state, traj)

    def value_of(obs):  # the value network, applied row by row in float64 on the standardised input
        flat = (np.asarray(obs, np.float64).reshape(-1, spec.obs_size) - 0.3) / 2.0
        return np.asarray(state.value.apply(state.value_params, flat), np.float64).reshape(6, 2) * 3.0 + 1.5

    flat = lambda x: np.asarray(x, np.float64).reshape(6, 2)  # noqa: E731  [episodes * time, envs]
    values, next_values = value_of(traj.obs), value_of(traj.next_obs)
    rewards = flat(traj.reward) - entropy * flat(traj.log_prob)
    ends = (flat(traj.terminated).astype(bool), flat(traj.truncated).astype(bool))
    want = numpy_gae(rewards, values, next_values, *ends, 0.9, 0.8, bootstrap=bootstrap)
    np.testing.assert_allclose(advantages, want, rtol=1e-5, atol=1e-5)
    if target == "lambda_return":
        want_targets = want + values
    else:
        want_targets = numpy_returns(rewards, next_values, *ends, 0.9, bootstrap=bootstrap)
    np.testing.assert_allclose(targets, want_targets, rtol=1e-5, atol=1e-5)
    # hand check of one entry: env 1's first episode ends by termination at t = 1, so Â_1 = r_1 − V(s_1)
    assert advantages[1, 1] == pytest.approx(rewards[1, 1] - values[1, 1], abs=1e-5)
    # the last step of env 0's first episode is a truncation: δ bootstraps only if asked to
    cut = rewards[2, 0] - values[2, 0]
    assert advantages[2, 0] == pytest.approx(cut + (0.9 * next_values[2, 0] if bootstrap else 0.0), abs=1e-5)


def test_centring_off_leaves_raw_advantages():
    """The paper's recipe (center_adv=False) feeds the surrogate the raw GAE advantages; the garage
    example's standardises them over the iteration (mean 0, std 1)."""
    spec = toy_env().spec
    traj = tiny_trajectory(spec)
    state = mt_ppo.init(jax.random.key(0), spec, PAPER_SMALL)
    assert not state.config.normalize_advantages
    raw = np.asarray(mt_ppo.estimate_advantages(state, traj)[0]).reshape(-1)
    samples = mt_ppo.make_samples(state, traj)
    np.testing.assert_array_equal(samples.policy.advantage, raw)
    assert abs(raw.mean()) > 0.05 and abs(raw.std() - 1) > 0.05  # far from standardised
    centred = mt_ppo.make_samples(
        state.replace(config=dataclasses.replace(PAPER_SMALL, normalize_advantages=True)), traj
    )
    np.testing.assert_allclose(centred.policy.advantage, (raw - raw.mean()) / raw.std(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("num_samples, size", [(800, 64), (640, 64), (50, 64), (7, 3)])
def test_one_epoch_visits_every_sample_exactly_once(num_samples, size):
    full, rest = mt_ppo.epoch_minibatches(jax.random.key(num_samples), num_samples, size)
    size = min(size, num_samples)
    assert full.shape == (num_samples // size, size) and rest.shape == (num_samples % size,)
    visited = np.concatenate([np.asarray(full).reshape(-1), np.asarray(rest)])
    np.testing.assert_array_equal(np.sort(visited), np.arange(num_samples))
    # a fresh key shuffles anew
    other, _ = mt_ppo.epoch_minibatches(jax.random.key(num_samples + 1), num_samples, size)
    if num_samples > 10:
        assert not np.array_equal(np.asarray(full), np.asarray(other))


def test_clipped_samples_have_zero_gradient():
    """Eq. 7's defining property: a sample whose ratio r already left [1 − ε, 1 + ε] in the direction its
    advantage favours (r > 1 + ε with Â > 0, r < 1 − ε with Â < 0) contributes no policy gradient; every
    other sample does. Checked per sample through the agent's own loss (entropy bonus off)."""
    spec = toy_env().spec
    state = mt_ppo.init(jax.random.key(1), spec, SMALL)
    rng = np.random.default_rng(2)
    rows = 8
    obs = jnp.asarray(rng.normal(size=(rows, spec.obs_size)), jnp.float32)
    mean, log_std = state.policy.apply(state.policy_params, obs)
    action, log_prob = pg.sample_gaussian(mean, log_std, jax.random.key(3))
    # r = π/π_old chosen per row: the last four are clipped in their advantage's favoured direction
    ratio = np.array([1.1, 0.9, 1.5, 0.6, 1.5, 1.3, 0.6, 0.7], np.float32)
    advantage = np.array([1.0, -1.0, -1.0, 1.0, 2.0, 1.0, -2.0, -1.0], np.float32)
    clipped = np.array([0, 0, 0, 0, 1, 1, 1, 1], bool)
    batch = pg.PolicyBatch(
        obs=obs, action=action, advantage=jnp.asarray(advantage), old_log_prob=log_prob - np.log(ratio)
    )

    def grad_norm(row: pg.PolicyBatch) -> jax.Array:  # the gradient of a one-sample batch
        one = jax.tree.map(lambda x: x[None], row)
        grads = jax.grad(lambda p: mt_ppo.policy_loss(p, one, state=state)[0])(state.policy_params)
        return jnp.sqrt(sum(jnp.sum(g**2) for g in jax.tree.leaves(grads)))

    norms = np.asarray(jax.jit(jax.vmap(grad_norm))(batch))
    assert np.all(norms[clipped] == 0.0), norms
    assert np.all(norms[~clipped] > 1e-3), norms


# ---------------------------------------------------------------- the two recipes


def test_default_config_is_the_meta_world_paper_recipe():
    """garage@merge-mw-v2-examples metaworld_examples/mtppo_metaworld_mt10.py, field by field."""
    assert dataclasses.asdict(mt_ppo.Config()) == dict(
        policy_hidden_sizes=(256, 256), std_head=True, min_std=0.5, max_std=1.5, init_std=1.0,
        value_hidden_sizes=(256, 256), value_fit="penalty_lbfgs", value_max_kl=0.01, policy_lr=5e-4,
        value_lr=2.5e-4, gamma=0.99, gae_lambda=0.95, clip_eps=0.2, epochs=16, minibatch_size=32,
        minibatch_unit="episode", loss_tolerance=1e-6, entropy_coef=0.0, max_entropy_coef=5e-3,
        normalize_advantages=False, bootstrap_truncation=False, value_target="monte_carlo",
        episodes_per_iteration=2, goal_resample_every=50,
    )  # fmt: skip


def test_garage_example_config_is_garages_torch_example():
    """garage@master src/garage/examples/torch/mtppo_metaworld_mt10.py with torch PPO's defaults."""
    example = dataclasses.asdict(mt_ppo.garage_example_config())
    assert example == dataclasses.asdict(mt_ppo.Config()) | dict(
        policy_hidden_sizes=(64, 64), std_head=False, min_std=1e-6, max_std=None, value_hidden_sizes=(32, 32),
        value_fit="adam", policy_lr=2.5e-4, value_lr=2.5e-4, epochs=10, minibatch_size=64,
        minibatch_unit="sample", loss_tolerance=0.0, max_entropy_coef=0.0, normalize_advantages=True,
        episodes_per_iteration=1, goal_resample_every=0,
    )  # fmt: skip
    assert mt_ppo.garage_example_config(epochs=3).epochs == 3


def kernel_shapes(params) -> dict[str, tuple[int, ...]]:
    return {
        name: tuple(layer["kernel"].shape)
        for name, layer in params["params"].items()
        if isinstance(layer, dict)
    }


def test_networks_have_the_recipe_shapes():
    """Paper recipe: a 256×256 policy with a log-std head beside the mean, and a 256×256 MLP baseline (MT50:
    512×512 both); garage example: 64×64 policy with a log-std parameter, 32×32 value function."""
    spec = toy_env().spec
    obs, act = spec.obs_size, spec.action_size
    paper = mt_ppo.init(jax.random.key(0), spec, mt_ppo.Config())
    assert kernel_shapes(paper.value_params) == {
        "dense_0": (obs, 256),
        "dense_1": (256, 256),
        "value": (256, 1),
    }
    assert kernel_shapes(paper.policy_params) == {
        "dense_0": (obs, 256), "dense_1": (256, 256), "mean": (256, act), "log_std_head": (256, act)
    }  # fmt: skip
    assert "log_std" not in paper.policy_params["params"]
    mt50 = mt_ppo.init(
        jax.random.key(0), spec, mt_ppo.Config(policy_hidden_sizes=(512, 512), value_hidden_sizes=(512, 512))
    )
    assert kernel_shapes(mt50.value_params)["dense_1"] == (512, 512)
    example = mt_ppo.init(jax.random.key(0), spec, mt_ppo.garage_example_config())
    assert kernel_shapes(example.value_params) == {
        "dense_0": (obs, 32),
        "dense_1": (32, 32),
        "value": (32, 1),
    }
    assert kernel_shapes(example.policy_params) == {
        "dense_0": (obs, 64),
        "dense_1": (64, 64),
        "mean": (64, act),
    }
    assert example.policy_params["params"]["log_std"].shape == (act,)
    # Glorot-uniform kernels, as garage's: within ±sqrt(6 / (fan_in + fan_out)), and filling that range
    kernel = np.asarray(paper.value_params["params"]["dense_0"]["kernel"])
    limit = math.sqrt(6 / (obs + 256))
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.95 * limit


def set_std_head_bias(params, value: float):
    head = params["params"]["log_std_head"]
    return {
        "params": {**params["params"], "log_std_head": {**head, "bias": jnp.full_like(head["bias"], value)}}
    }


def test_std_is_clipped_to_the_recipe_bounds_and_depends_on_the_state():
    """std ∈ [0.5, 1.5] whatever the head outputs (a hard clip: no gradient through a clipped std); the
    head makes it state dependent. Without the bounds the same parameters give stds far outside."""
    spec = toy_env().spec
    obs = jax.random.normal(jax.random.key(1), (16, spec.obs_size)) * 3
    state = mt_ppo.init(jax.random.key(0), spec, mt_ppo.Config())
    unclipped = mt_ppo.make_policy(spec, mt_ppo.Config(min_std=None, max_std=None))
    for bias, bound in ((5.0, 1.5), (-5.0, 0.5)):
        params = set_std_head_bias(state.policy_params, bias)
        _, log_std = state.policy.apply(params, obs)
        np.testing.assert_allclose(np.exp(log_std), bound, rtol=1e-6)
        _, free = unclipped.apply(params, obs)
        assert np.all(np.abs(np.asarray(free)) > abs(math.log(bound)) + 1)

        def log_prob(p):
            mean, log_std = state.policy.apply(p, obs)
            return pg.gaussian_log_prob(mean, log_std, jnp.zeros_like(mean)).sum()

        grad = jax.grad(log_prob)(params)["params"]["log_std_head"]["bias"]
        np.testing.assert_array_equal(grad, 0.0)
    _, log_std = state.policy.apply(state.policy_params, obs)  # inside the bounds: varies with the state
    assert np.all(np.exp(log_std) >= 0.5) and np.all(np.exp(log_std) <= 1.5)
    assert np.asarray(log_std).std(axis=0).min() > 1e-3
    example = mt_ppo.init(jax.random.key(0), spec, mt_ppo.garage_example_config())
    _, log_std = example.policy.apply(example.policy_params, obs)
    assert np.asarray(log_std).std(axis=0).max() == 0.0


def test_episode_minibatches_are_whole_episodes():
    """With `minibatch_unit="episode"` every minibatch is a set of whole episodes (all T steps of one env's
    episode), as garage batches its [episodes, T] inputs; the sample order is that of `make_samples`."""
    spec = toy_env().spec
    episodes, T, n = 3, 5, 4
    rows = mt_ppo.episode_rows(episodes, T, n)
    # label each step of a [episodes, time, envs] trajectory with (episode, env) and flatten it
    label = np.arange(episodes)[:, None, None] * 100 + np.arange(n)[None, None, :] + np.zeros((1, T, 1), int)
    traj = tiny_trajectory(spec)
    traj = jax.tree.map(lambda x: jnp.zeros((episodes, T, n, *x.shape[3:]), x.dtype), traj)
    traj = traj.replace(reward=jnp.asarray(label, jnp.float32))
    flat_label = np.asarray(traj.reward).reshape(-1)
    assert (
        all(len(set(flat_label[r])) == 1 for r in rows) and len(set(flat_label[rows[:, 0]])) == episodes * n
    )
    full, rest = mt_ppo.epoch_minibatches(jax.random.key(0), episodes * T * n, 5, rows)
    assert full.shape == (2, 5 * T) and rest.shape == (2 * T,)
    for batch in [*np.asarray(full), np.asarray(rest)]:
        steps = flat_label[batch].reshape(-1, T)
        assert np.all(steps == steps[:, :1])  # T consecutive entries: one episode
    visited = np.concatenate([np.asarray(full).reshape(-1), np.asarray(rest)])
    np.testing.assert_array_equal(np.sort(visited), np.arange(episodes * T * n))


def test_goals_hold_for_goal_resample_every_iterations():
    """The iteration's goals come from its goal block: iterations 0 and 49 replay the same goals (same
    rewards under the same actions), iteration 50 draws new ones; with 0 the goals never change."""
    env = toy_env(envs_per_task=3, episodes_per_goal=2)
    state = mt_ppo.init(jax.random.key(0), env.spec, PAPER_SMALL)
    collect = jax.jit(functools.partial(mt_ppo.collect, env))
    key = jax.random.key(5)

    def rewards(iteration, config=PAPER_SMALL):
        s = state.replace(iteration=jnp.asarray(iteration, jnp.int32), config=config)
        return np.asarray(collect(s, key).reward)

    first = rewards(0)
    np.testing.assert_array_equal(rewards(49), first)
    assert not np.allclose(rewards(50), first)
    never = dataclasses.replace(PAPER_SMALL, goal_resample_every=0)
    np.testing.assert_array_equal(rewards(1000, never), rewards(0, never))
    # and both of the iteration's episodes play one goal (garage: one task per worker)
    assert mt_ppo.episodes_per_goal(PAPER_SMALL) == 2
    assert first.shape[0] == 2


def test_loss_tolerance_stops_the_epochs():
    """A tolerance above any loss change stops after the first epoch (the same update as `epochs=1`); a
    negligible one runs them all."""
    env = toy_env()
    config = dataclasses.replace(PAPER_SMALL, epochs=3, value_fit="adam")
    state = mt_ppo.init(jax.random.key(0), env.spec, config)
    traj = mt_ppo.collect(env, state, jax.random.key(1))
    samples = mt_ppo.make_samples(state, traj)
    rows = mt_ppo.episode_rows(*traj.reward.shape)

    def run(**changes):
        s = state.replace(config=dataclasses.replace(config, **changes))
        return jax.jit(lambda s: mt_ppo.run_epochs(s, samples, rows, jax.random.key(2)))(s)

    stopped, metrics = run(loss_tolerance=1e9)
    assert float(metrics["train/epochs"]) == 1.0
    one, _ = run(loss_tolerance=0.0, epochs=1)
    jax.tree.map(np.testing.assert_array_equal, stopped.policy_params, one.policy_params)
    all_, metrics = run(loss_tolerance=1e-30)
    assert float(metrics["train/epochs"]) == 3.0
    assert not np.allclose(
        all_.policy_params["params"]["mean"]["kernel"], one.policy_params["params"]["mean"]["kernel"]
    )


def test_penalty_lbfgs_baseline_fit():
    """garage's GaussianMLPBaseline fit: standardised inputs and targets, the Gaussian likelihood improved
    subject to mean KL(old ‖ new) ≤ value_max_kl, the penalty doubled while the step is too large (kept for
    the next fit) and halved while it is small; predictions move towards the targets."""
    spec = toy_env().spec
    rng = np.random.default_rng(0)
    obs = jnp.asarray(rng.normal(size=(256, spec.obs_size)) * 2 + 1, jnp.float32)
    targets = jnp.asarray(3 * np.sin(np.asarray(obs[:, 0])) + np.asarray(obs[:, 1]) + 10, jnp.float32)
    state = mt_ppo.init(jax.random.key(0), spec, PAPER_SMALL)
    fit = jax.jit(mt_ppo.fit_baseline)(state, obs, targets)
    np.testing.assert_allclose(fit.normalizer.x_mean, obs.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fit.normalizer.x_std, obs.std(0) + 1e-8, rtol=1e-5)
    np.testing.assert_allclose(fit.normalizer.y_mean, targets.mean(), rtol=1e-5)
    np.testing.assert_allclose(fit.normalizer.y_std, targets.std() + 1e-8, rtol=1e-5)
    assert 0 < float(fit.kl) <= 0.01
    assert float(fit.penalty) > 1.0  # the unpenalised step overshot the KL limit
    fitted = state.replace(value_params=fit.value_params, value_normalizer=fit.normalizer)
    error = lambda s: float(jnp.mean((mt_ppo.baseline_values(s, obs) - targets) ** 2))  # noqa: E731
    assert error(fitted) < 0.5 * error(state)
    loose = state.replace(config=dataclasses.replace(PAPER_SMALL, value_max_kl=1e3))
    fit_loose = jax.jit(mt_ppo.fit_baseline)(loose, obs, targets)
    # within the limit at every penalty: halved each trial down to the floor, keeping the last fit
    assert float(fit_loose.penalty) == pytest.approx(0.01) and float(fit_loose.kl) > float(fit.kl)
    assert float(fit_loose.loss) < float(fit.loss)


def test_train_iteration_under_jit_and_vmap():
    env = toy_env()
    spec = env.spec
    state = mt_ppo.init(jax.random.key(0), spec, SMALL)
    step = jax.jit(functools.partial(mt_ppo.train_iteration, env))
    new_state, metrics = step(state, jax.random.key(1))
    for name in ("train/success", "train/episode_return", "train/policy_loss", "train/value_loss"):
        assert name in metrics, name
    for name, value in metrics.items():
        assert name.startswith("train/") and value.shape == () and value.dtype == jnp.float32, name
        assert np.isfinite(value), name
    assert int(new_state.iteration) == 1
    assert jax.tree.structure(new_state) == jax.tree.structure(state)
    for old, new in zip(jax.tree.leaves(state), jax.tree.leaves(new_state), strict=True):
        assert old.shape == new.shape and old.dtype == new.dtype
    changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), state.policy_params, new_state.policy_params)
    assert all(jax.tree.leaves(changed))
    assert mt_ppo.vector_steps_per_iteration(spec, SMALL) == spec.episode_length
    assert mt_ppo.episodes_per_goal(SMALL) == 1

    # vmap over (state, key): two seeds train side by side, as the loop does for pure-JAX envs
    keys = jax.random.split(jax.random.key(2), 2)
    states = jax.vmap(functools.partial(mt_ppo.init, spec=spec, config=SMALL))(keys)
    states, metrics = jax.jit(jax.vmap(functools.partial(mt_ppo.train_iteration, env)))(states, keys)
    assert metrics["train/success"].shape == (2,)
    kernels = states.policy_params["params"]["mean"]["kernel"]
    assert not np.allclose(kernels[0], kernels[1])

    # act: the deterministic action is the clipped mean, a stochastic one differs from it
    obs = jnp.concatenate([jnp.full((8, 2), 5.0), jnp.zeros((8, 4))], axis=1)
    mean, _ = new_state.policy.apply(new_state.policy_params, obs)
    deterministic = mt_ppo.act(new_state, obs, jnp.zeros(8, jnp.int32), jax.random.key(0), True)
    np.testing.assert_allclose(deterministic, jnp.clip(mean, -1.0, 1.0))
    sample = mt_ppo.act(new_state, obs, jnp.zeros(8, jnp.int32), jax.random.key(0), False)
    assert sample.shape == (8, spec.action_size) and not np.allclose(sample, deterministic)


def test_zero_learning_rates_leave_params_unchanged():
    env = toy_env()
    config = dataclasses.replace(SMALL, policy_lr=0.0, value_lr=0.0, epochs=2)
    state = mt_ppo.init(jax.random.key(0), env.spec, config)
    new_state, metrics = jax.jit(functools.partial(mt_ppo.train_iteration, env))(state, jax.random.key(1))
    jax.tree.map(np.testing.assert_array_equal, new_state.policy_params, state.policy_params)
    jax.tree.map(np.testing.assert_array_equal, new_state.value_params, state.value_params)
    # nothing moved, so every minibatch saw the behaviour policy: ratio 1, no KL, nothing clipped
    assert metrics["train/approx_kl"] == pytest.approx(0.0, abs=1e-6)
    assert metrics["train/clip_fraction"] == 0.0
    assert metrics["train/policy_grad_norm"] > 0  # the gradient itself was there


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"policy_hidden_sizes": ()}, "policy_hidden_sizes"),
        ({"value_hidden_sizes": (32, 0)}, "value_hidden_sizes"),
        ({"policy_lr": -1e-3}, "policy_lr"),
        ({"clip_eps": 0.0}, "clip_eps"),
        ({"gamma": 1.5}, "gamma"),
        ({"gae_lambda": -0.1}, "gae_lambda"),
        ({"epochs": 0}, "epochs"),
        ({"minibatch_size": 2.5}, "minibatch_size"),
        ({"episodes_per_iteration": 0}, "episodes_per_iteration"),
        ({"entropy_coef": float("nan")}, "entropy_coef"),
        ({"init_std": 0.0}, "init_std"),
        ({"min_std": 0.0}, "min_std must be None or > 0, got 0.0"),
        ({"min_std": 2.0}, "min_std must be < max_std, got min_std=2.0, max_std=1.5"),
        ({"minibatch_unit": "step"}, "unknown minibatch_unit 'step'; valid: episode, sample"),
        ({"value_fit": "sgd"}, "unknown value_fit 'sgd'; valid: penalty_lbfgs, adam"),
        ({"value_target": "td"}, "unknown value_target 'td'; valid: monte_carlo, lambda_return"),
        ({"value_max_kl": 0.0}, "value_max_kl"),
        ({"max_entropy_coef": -1.0}, "max_entropy_coef"),
        ({"loss_tolerance": -1e-6}, "loss_tolerance"),
        ({"goal_resample_every": -1}, r"goal_resample_every must be an integer >= 0 \(0: never\), got -1"),
    ],
)
def test_bad_config_is_one_line(kwargs, message):
    with pytest.raises(ValueError, match=message) as info:
        mt_ppo.Config(**kwargs)
    assert "\n" not in str(info.value)


def test_lists_become_tuples():
    config = mt_ppo.Config(policy_hidden_sizes=[16, 16], value_hidden_sizes=[8])
    assert config.policy_hidden_sizes == (16, 16) and config.value_hidden_sizes == (8,)
    hash(config)


def evaluate(eval_env, state) -> float:
    flags = evaluation.run_episodes(
        eval_env, AGENT, state, jax.random.key(99), 50 // eval_env.spec.envs_per_task
    )
    return evaluation.eval_metrics(eval_env.spec, np.asarray(flags))["eval/success"]


def learn_toy(config, iterations: int):
    """Deterministic eval success on the 4 × 50 toy goals before and after training; the last metrics."""
    env = toy_env(envs_per_task=4, episodes_per_goal=mt_ppo.episodes_per_goal(config))
    eval_env = toy_env(envs_per_task=10, goal_sampling="sequential")
    state = mt_ppo.init(jax.random.key(0), env.spec, config)
    step = jax.jit(functools.partial(mt_ppo.train_iteration, env))
    before = evaluate(eval_env, state)
    for i in range(iterations):
        state, metrics = step(state, jax.random.key(i + 1))
    after = evaluate(eval_env, state)
    print(f"toy MT-PPO eval success: initial {before:.3f} -> after {iterations} iterations {after:.3f}")
    return before, after, metrics


def test_learns_the_multi_task_toy_env():
    """Four tasks that differ only in the one-hot id: deterministic eval success on all 4 × 50 goals rises
    from the initial policy's (whose mean barely moves from the origin) to near 1."""
    before, after, metrics = learn_toy(SMALL, 20)
    assert before <= 0.25
    assert after >= 0.9 and after >= before + 0.6
    assert metrics["train/success"] >= 0.8


def test_paper_recipe_learns_the_multi_task_toy_env():
    """The Meta-World paper's recipe (toy-sized networks, larger step): std floor 0.5, max-entropy reward,
    raw advantages, the L-BFGS baseline, goals held for 50 iterations, 2 episodes per env and iteration."""
    before, after, metrics = learn_toy(PAPER_SMALL, 30)
    assert after >= 0.8 and after >= before + 0.5
    assert 0 < float(metrics["train/value_kl"]) <= PAPER_SMALL.value_max_kl


@pytest.mark.slow
def test_learns_mt1_reach():
    """MT1 reach-v3 on the native backend with the Meta-World paper's recipe (defaults), 10 envs: 2 episodes
    each, 10,000 steps per iteration, 20 iterations (the 10 training goals stay fixed: 50-iteration goal
    blocks). Deterministic eval over the task's 50 goals. Measured (shared 2-core machine, ~14 s per
    iteration): train return per episode 217 -> 1,993, eval success 0.00 -> 0.22 after 190k steps, 5.3 min."""
    config = mt_ppo.Config()
    env = envs.make(
        "MT1", task="reach-v3", backend="native", envs_per_task=10,
        episodes_per_goal=mt_ppo.episodes_per_goal(config),
    )  # fmt: skip
    eval_env = envs.make(
        "MT1", task="reach-v3", backend="native", envs_per_task=10, goal_sampling="sequential"
    )
    state = mt_ppo.init(jax.random.key(0), env.spec, config)
    step = jax.jit(functools.partial(mt_ppo.train_iteration, env))
    run = jax.jit(lambda s: evaluation.run_episodes(eval_env, AGENT, s, jax.random.key(99), 5))
    score = lambda s: evaluation.eval_metrics(eval_env.spec, np.asarray(run(s)))["eval/success"]  # noqa: E731
    start = time.time()
    before = score(state)
    iterations, steps = 20, mt_ppo.vector_steps_per_iteration(env.spec, config) * env.spec.num_envs
    returns = []
    for i in range(iterations):
        state, metrics = step(state, jax.random.key(i + 1))
        returns.append(float(metrics["train/episode_return"]))
    after = score(state)
    minutes = (time.time() - start) / 60
    print(
        f"MT1 reach-v3 MT-PPO: {iterations * steps} steps in {minutes:.1f} min, train return "
        f"{returns[0]:.0f} -> {returns[-1]:.0f}, eval success {before:.2f} -> {after:.2f}"
    )
    assert returns[-1] > 3 * returns[0]
    assert after >= 0.1 and after > before

"""MOORE-PPO (the MOORE authors' MiniGrid PPO) against independent references: per-task advantage
standardisation, the clipped surrogate with entropy bonus and the authors' `compute_gae` written in NumPy,
full-batch critic Adam steps against an optax loop, the actor's minibatching recorded step by step, a
jitted and seed-vmapped iteration on MiniGrid-MT3, acting, config errors, and a learning check (slow).

The CNN's compiles dominate the run time, so one small MT3 state (module fixture) serves every fast test.
"""

from __future__ import annotations

import dataclasses
import math
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from mtrl.agents import moore_ppo as mp

from mtrl import envs, evaluation, onpolicy
from mtrl.types import Agent

SMALL = mp.Config(steps_per_iteration=64, epochs=1, minibatch_per_task=16)
"""The authors' recipe with a short block (64 vector steps = 192 samples on MT3) and 48-sample minibatches."""

AGENT = Agent("moore_ppo", None, mp.act, None)  # evaluation.run_scored_episodes needs only `act`


@pytest.fixture(scope="module")
def env():
    return envs.make("MiniGrid-MT3")


@pytest.fixture(scope="module")
def state(env):
    return jax.jit(lambda key: mp.init(key, env.spec, SMALL))(jax.random.key(0))  # eagerly: ~40 compiles


def with_config(state: mp.State, **changes) -> mp.State:
    return state.replace(config=dataclasses.replace(state.config, **changes))


def random_obs(rng: np.random.Generator, *lead: int) -> np.ndarray:
    """MiniGrid-like observations: integer (object, colour, state) codes as floats."""
    return rng.integers(0, 11, size=(*lead, 147)).astype(np.float32)


def with_head(params, **leaves):
    """`params` with some leaves of the multi-head output layer replaced (no in-place edits)."""
    heads = {**params["params"]["heads"], **leaves}
    return {"params": {**params["params"], "heads": heads}}


def numpy_log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def synthetic_batch(state: mp.State, n: int, seed: int) -> mp.Batch:
    """`n` random samples of the 3 tasks (unequal counts); old log-probs are the current policy's, so every
    ratio starts at 1; `value_target` holds the sample index (the actor never reads it)."""
    rng = np.random.default_rng(seed)
    obs = jnp.asarray(random_obs(rng, n))
    task_id = jnp.asarray(rng.integers(0, 3, n), jnp.int32)
    action = jnp.asarray(rng.integers(0, 7, n), jnp.int32)
    log_probs = jax.nn.log_softmax(state.actor.apply(state.actor_params, obs, task_id))
    return mp.Batch(
        obs=obs,
        task_id=task_id,
        action=action,
        old_log_prob=jnp.take_along_axis(log_probs, action[:, None], axis=-1)[:, 0],
        advantage=jnp.asarray(rng.normal(size=n), jnp.float32),
        value_target=jnp.arange(n, dtype=jnp.float32),
    )


# --- 1. advantage standardisation ------------------------------------------------------------------------


def test_normalize_advantages_per_task_batch_and_none_equal_numpy():
    """Per task: each task's samples to mean 0, std 1 (numpy std, ddof 0, eps 1e-8), even when the tasks'
    scales differ by 10⁶; a task with one sample maps to 0 and an absent task changes nothing."""
    rng = np.random.default_rng(0)
    task_id = rng.permutation(np.array([0] * 40 + [1] * 25 + [2] * 34 + [3]))  # task 4 of 5 is absent
    scale = np.array([1e-3, 1.0, 1e3, 5.0])[task_id]
    offset = np.array([5.0, -2.0, 300.0, 7.0])[task_id]
    advantages = (rng.normal(size=task_id.size) * scale + offset).astype(np.float32)

    want = np.empty(advantages.size, np.float64)
    x = advantages.astype(np.float64)
    for task in np.unique(task_id):
        rows = task_id == task
        want[rows] = (x[rows] - x[rows].mean()) / (x[rows].std() + 1e-8)
    got = mp.normalize_advantages(jnp.asarray(advantages), jnp.asarray(task_id), 5, "per_task")
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    for task in range(3):  # every task standardised on its own, despite the scales
        assert np.mean(np.asarray(got)[task_id == task]) == pytest.approx(0.0, abs=1e-4)
        assert np.std(np.asarray(got)[task_id == task]) == pytest.approx(1.0, abs=1e-3)
    assert np.asarray(got)[task_id == 3] == pytest.approx(0.0)

    got_batch = mp.normalize_advantages(jnp.asarray(advantages), jnp.asarray(task_id), 5, "batch")
    np.testing.assert_allclose(got_batch, (x - x.mean()) / (x.std() + 1e-8), rtol=1e-4, atol=1e-5)
    got_none = mp.normalize_advantages(jnp.asarray(advantages), jnp.asarray(task_id), 5, "none")
    np.testing.assert_array_equal(got_none, advantages)


# --- 2. the actor's loss ---------------------------------------------------------------------------------


@pytest.mark.parametrize("clip_eps, entropy_coef", [(0.2, 0.01), (0.1, 0.5)])
def test_actor_loss_equals_numpy(state, clip_eps, entropy_coef):
    """−(mean(min(r·A, clip(r, 1 ± ε)·A)) + c · mean entropy) and its diagnostics, from the network's logits
    in float64 NumPy; the old log-probs are perturbed so that many ratios are clipped."""
    st = with_config(state, clip_eps=clip_eps, entropy_coef=entropy_coef)
    rng = np.random.default_rng(1)
    n = 64
    obs = jnp.asarray(random_obs(rng, n))
    task_id = jnp.asarray(rng.integers(0, 3, n), jnp.int32)
    logits = np.asarray(st.actor.apply(st.actor_params, obs, task_id), np.float64)
    action = rng.integers(0, 7, n)
    log_probs = numpy_log_softmax(logits)
    log_prob = log_probs[np.arange(n), action]
    old_log_prob = log_prob + rng.normal(0.0, 0.4, n)
    advantage = rng.normal(size=n)

    ratio = np.exp(log_prob - old_log_prob)
    surrogate = np.minimum(ratio * advantage, np.clip(ratio, 1 - clip_eps, 1 + clip_eps) * advantage)
    entropy = -(np.exp(log_probs) * log_probs).sum(-1).mean()
    want = -(surrogate.mean() + entropy_coef * entropy)
    clip_fraction = np.mean(np.abs(ratio - 1) > clip_eps)
    assert 0.2 < clip_fraction < 0.95  # both branches of the min/clip are exercised

    batch = mp.Batch(
        obs=obs,
        task_id=task_id,
        action=jnp.asarray(action, jnp.int32),
        old_log_prob=jnp.asarray(old_log_prob, jnp.float32),
        advantage=jnp.asarray(advantage, jnp.float32),
        value_target=jnp.zeros(n),
    )
    loss, aux = mp.actor_loss(st.actor_params, batch, state=st)
    assert float(loss) == pytest.approx(want, abs=1e-5)
    assert float(aux.entropy) == pytest.approx(entropy, abs=1e-5)
    assert float(aux.approx_kl) == pytest.approx(np.mean(old_log_prob - log_prob), abs=1e-5)
    assert float(aux.clip_fraction) == pytest.approx(clip_fraction, abs=1e-6)


# --- 3. GAE and value targets ----------------------------------------------------------------------------


def numpy_compute_gae(reward, v, v_next, absorbing, last, gamma, lam):
    """The authors' `compute_gae` (moore mtppo.py) for one env's segment, in float64: backwards; at a `last`
    row or the segment's final row the advantage restarts from r − V(s) (+ γ V(s') unless absorbing)."""
    adv = np.empty(len(v))
    for rev_k in range(len(v)):
        k = len(v) - rev_k - 1
        if last[k] or rev_k == 0:
            adv[k] = reward[k] - v[k] + (0.0 if absorbing[k] else gamma * v_next[k])
        else:
            adv[k] = reward[k] + gamma * v_next[k] - v[k] + gamma * lam * adv[k + 1]
    return adv


def test_make_batch_matches_the_authors_gae(state):
    """On a hand-made [8 steps, 3 envs] trajectory with time limits, terminations (one at the block's end,
    one together with a time limit) and a running episode cut by the block end: advantages equal the
    authors' per-env `compute_gae` (γ 0.9, λ 0.8 from the config), targets = Â + V(s) before
    standardisation, and the per-task standardisation is applied on top."""
    steps, n = 8, 3
    rng = np.random.default_rng(2)
    terminated = np.zeros((steps, n), bool)
    truncated = np.zeros((steps, n), bool)
    truncated[2, 0] = True  # env 0: time limit at 2, termination at 5, cut by the block end at 7
    terminated[5, 0] = True
    terminated[7, 1] = True  # env 1: terminates on the block's last step (no bootstrap there)
    truncated[3, 2] = True  # env 2: time limit at 3, terminated and truncated together at 6
    terminated[6, 2] = truncated[6, 2] = True
    traj = onpolicy.Trajectory(
        obs=jnp.asarray(random_obs(rng, steps, n)),
        action=jnp.asarray(rng.integers(0, 7, (steps, n)), jnp.int32),
        reward=jnp.asarray(rng.normal(size=(steps, n)), jnp.float32),
        terminated=jnp.asarray(terminated),
        truncated=jnp.asarray(truncated),
        success=jnp.zeros((steps, n), bool),
        log_prob=jnp.asarray(rng.normal(size=(steps, n)), jnp.float32),
        next_obs=jnp.asarray(random_obs(rng, steps, n)),
        task_id=jnp.tile(jnp.arange(n, dtype=jnp.int32), (steps, 1)),
    )
    # a critic with large per-task offsets, so that a missing or extra γ V(s') is plain to see
    bias = state.critic_params["params"]["heads"]["out_bias"] + jnp.array([[1.0], [-2.0], [3.0]])
    st = state.replace(critic_params=with_head(state.critic_params, out_bias=bias))
    st = with_config(st, gamma=0.9, gae_lambda=0.8, advantage_normalization="none")
    v = np.asarray(st.critic.apply(st.critic_params, traj.obs, traj.task_id), np.float64)[..., 0]
    v_next = np.asarray(st.critic.apply(st.critic_params, traj.next_obs, traj.task_id), np.float64)[..., 0]
    reward = np.asarray(traj.reward, np.float64)
    want = np.stack(
        [
            numpy_compute_gae(
                reward[:, e], v[:, e], v_next[:, e], terminated[:, e], terminated[:, e] | truncated[:, e],
                0.9, 0.8,
            )
            for e in range(n)
        ],
        axis=1,
    )  # fmt: skip

    batch = mp.make_batch(st, traj, num_tasks=3)
    np.testing.assert_allclose(batch.advantage, want.reshape(-1), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(batch.value_target, (want + v).reshape(-1), rtol=1e-5, atol=1e-5)
    # samples flattened step-major, every field in the same order
    np.testing.assert_array_equal(batch.task_id, np.tile(np.arange(n), steps))
    np.testing.assert_array_equal(batch.action, np.asarray(traj.action).reshape(-1))
    np.testing.assert_array_equal(batch.old_log_prob, np.asarray(traj.log_prob).reshape(-1))
    np.testing.assert_array_equal(batch.obs, np.asarray(traj.obs).reshape(-1, 147))
    # hand checks: the block-end cut bootstraps, the terminal step at the block end does not
    assert want[7, 0] == pytest.approx(reward[7, 0] + 0.9 * v_next[7, 0] - v[7, 0])
    assert want[7, 1] == pytest.approx(reward[7, 1] - v[7, 1])

    per_task = mp.make_batch(with_config(st, advantage_normalization="per_task"), traj, num_tasks=3)
    flat = want.reshape(-1)
    standardised = np.empty_like(flat)
    for task in range(3):
        rows = np.tile(np.arange(n), steps) == task
        standardised[rows] = (flat[rows] - flat[rows].mean()) / (flat[rows].std() + 1e-8)
    np.testing.assert_allclose(per_task.advantage, standardised, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(per_task.value_target, (want + v).reshape(-1), rtol=1e-5, atol=1e-5)


# --- 4. the critic's fit ---------------------------------------------------------------------------------


def relative_difference(got, want, start) -> float:
    """‖got − want‖ / ‖want − start‖ over all leaves: how far two updates of `start` disagree."""
    diff = sum(
        float(jnp.sum((a - b) ** 2)) for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True)
    )
    step = sum(
        float(jnp.sum((b - s) ** 2))
        for b, s in zip(jax.tree.leaves(want), jax.tree.leaves(start), strict=True)
    )
    return math.sqrt(diff / step)


def test_fit_critic_takes_critic_steps_full_batch_adam_steps(state):
    """`critic_steps` = 3 equals three Adam steps on the MSE over the whole batch (an optax loop here);
    2 or 4 steps, or minibatches, would not. `critic_steps` = 0 changes nothing."""
    lr, n = 3e-3, 96
    rng = np.random.default_rng(3)
    obs = jnp.asarray(random_obs(rng, n))
    task_id = jnp.asarray(rng.integers(0, 3, n), jnp.int32)
    target = jnp.asarray(2.0 * rng.normal(size=n), jnp.float32)
    batch = mp.Batch(obs, task_id, jnp.zeros(n, jnp.int32), jnp.zeros(n), jnp.zeros(n), target)
    st = with_config(state, critic_steps=3, critic_lr=lr)

    def mse(params):
        return jnp.mean((st.critic.apply(params, obs, task_id)[:, 0] - target) ** 2)

    step = jax.jit(jax.value_and_grad(mse))
    optimizer = optax.adam(lr)
    params, opt_state, losses, trail = st.critic_params, optimizer.init(st.critic_params), [], []
    for _ in range(4):
        loss, grads = step(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        losses.append(float(loss))
        trail.append(params)

    fitted, metrics = mp.fit_critic(st, batch)
    assert relative_difference(fitted.critic_params, trail[2], st.critic_params) < 1e-3
    assert relative_difference(fitted.critic_params, trail[1], st.critic_params) > 0.1
    assert relative_difference(fitted.critic_params, trail[3], st.critic_params) > 0.1
    assert int(fitted.critic_opt_state[0].count) == 3
    assert float(metrics["train/value_loss"]) == pytest.approx(np.mean(losses[:3]), rel=1e-4)
    assert losses[2] < losses[0]
    assert fitted.actor_params is st.actor_params  # the actor is not the critic's business

    unchanged, metrics = mp.fit_critic(with_config(st, critic_steps=0), batch)
    for a, b in zip(jax.tree.leaves(unchanged.critic_params), jax.tree.leaves(st.critic_params), strict=True):
        np.testing.assert_array_equal(a, b)
    assert int(unchanged.critic_opt_state[0].count) == 0
    assert float(metrics["train/value_loss"]) == pytest.approx(losses[0], rel=1e-4)


# --- 5. the actor's fit ----------------------------------------------------------------------------------


def test_fit_actor_uses_every_sample_once_per_epoch_in_task_scaled_minibatches(state, monkeypatch):
    """Minibatches of `minibatch_per_task` × tasks = 16 × 3 = 48 samples: 100 samples give 48, 48 and 4
    per epoch, a fresh shuffle each epoch, every sample once, and epochs × ceil(100/48) = 6 Adam steps; the
    loss on the batch goes down. Every step's rows are recorded through `gradient_step` (the sample index
    rides in `value_target`, which the actor's loss never reads)."""
    seen: list[np.ndarray] = []
    real_step = mp.gradient_step

    def recording_step(loss_fn, optimizer, params, opt_state, rows):
        jax.debug.callback(
            lambda ids: seen.append(np.asarray(ids).astype(int)), rows.value_target, ordered=True
        )
        return real_step(loss_fn, optimizer, params, opt_state, rows)

    monkeypatch.setattr(mp, "gradient_step", recording_step)
    st = with_config(state, epochs=2)
    n = 100
    batch = synthetic_batch(st, n, seed=4)
    fitted, metrics = mp.fit_actor(st, batch, jax.random.key(7))
    jax.effects_barrier()

    size = st.config.minibatch_per_task * st.actor.num_tasks
    assert size == 48
    assert [len(ids) for ids in seen] == [48, 48, 4, 48, 48, 4]
    assert int(fitted.actor_opt_state[0].count) == st.config.epochs * math.ceil(n / size) == 6
    epochs = [np.concatenate(seen[:3]), np.concatenate(seen[3:])]
    for order in epochs:
        np.testing.assert_array_equal(np.sort(order), np.arange(n))
    assert not np.array_equal(epochs[0], epochs[1])
    assert not np.array_equal(epochs[0], np.arange(n))
    names = ("policy_loss", "entropy", "approx_kl", "clip_fraction", "policy_grad_norm")
    assert set(metrics) == {f"train/{name}" for name in names}
    assert all(np.isfinite(float(value)) for value in metrics.values())
    before = float(mp.actor_loss(st.actor_params, batch, state=st)[0])
    after = float(mp.actor_loss(fitted.actor_params, batch, state=st)[0])
    assert after < before
    assert fitted.critic_params is st.critic_params


# --- 6. a whole iteration, acting ------------------------------------------------------------------------


def test_train_iteration_jitted_and_vmapped_over_seeds_on_mt3(env, state):
    """Two seeds of one iteration in one jitted vmap: finite metrics, the iteration counted, both networks
    moved (one critic step, epochs × ceil(192 / 48) = 4 actor steps), the two seeds apart."""
    seeds = 2
    stacked = jax.tree.map(lambda x: jnp.stack([x] * seeds), state)
    train = jax.jit(jax.vmap(lambda s, k: mp.train_iteration(env, s, k)))
    new, metrics = train(stacked, jax.random.split(jax.random.key(5), seeds))

    assert mp.vector_steps_per_iteration(env.spec, SMALL) == 64 and mp.episodes_per_goal(SMALL) == 1
    np.testing.assert_array_equal(new.iteration, [1, 1])
    assert {"train/value_loss", "train/policy_loss", "train/entropy", "train/episodes"} <= set(metrics)
    for name, value in metrics.items():
        assert value.shape == (seeds,), name
        assert np.all(np.isfinite(value)), name
    assert np.all(np.asarray(metrics["train/entropy"]) > 1.0)  # near log 7 ≈ 1.95 after one small fit
    assert np.all(np.asarray(metrics["train/entropy"]) <= math.log(7) + 1e-5)
    np.testing.assert_array_equal(new.critic_opt_state[0].count, [1, 1])
    np.testing.assert_array_equal(new.actor_opt_state[0].count, [4, 4])
    for name in ("actor_params", "critic_params"):
        for seed in range(seeds):
            moved = [
                not np.allclose(after[seed], before)
                for after, before in zip(
                    jax.tree.leaves(getattr(new, name)), jax.tree.leaves(getattr(state, name)), strict=True
                )
            ]
            assert all(moved), (name, seed)  # every leaf (experts, task weights, heads) gets updated
        leaves = jax.tree.leaves(getattr(new, name))
        assert any(not np.array_equal(leaf[0], leaf[1]) for leaf in leaves), name  # different keys and data
    assert not np.allclose(*jax.tree.leaves(new.actor_params)[-1])  # 4 steps on different data
    assert metrics["train/policy_loss"][0] != metrics["train/policy_loss"][1]


def test_act_is_argmax_or_a_softmax_sample(state):
    """Deterministic = argmax of the logits; sampled actions follow softmax(logits) of the sample's own
    task (logits pinned to known per-task values by zeroing the output kernel); `sample_policy`'s
    log-probability is that of the action it returns."""
    rng = np.random.default_rng(6)
    per_task = 1500  # one batch shape throughout: the eager ops compile once
    obs = jnp.asarray(random_obs(rng, 3 * per_task))
    task_id = jnp.repeat(jnp.arange(3, dtype=jnp.int32), per_task)
    logits = np.asarray(state.actor.apply(state.actor_params, obs, task_id))
    greedy = mp.act(state, obs, task_id, jax.random.key(0), deterministic=True)
    assert greedy.dtype == jnp.int32
    np.testing.assert_array_equal(greedy, logits.argmax(-1))

    pinned = np.array(
        [[2, 0, 0, -1, 0.5, 0, 1], [0, 0, 3, 0, 0, 0, 0], [-5, 1, 1, 1, 1, 0, 0]], np.float32
    )  # per-task logits
    heads = state.actor_params["params"]["heads"]
    st = state.replace(
        actor_params=with_head(
            state.actor_params, out_kernel=jnp.zeros_like(heads["out_kernel"]), out_bias=jnp.asarray(pinned)
        )
    )
    sampled = np.asarray(mp.act(st, obs, task_id, jax.random.key(1), deterministic=False))
    assert sampled.dtype == np.int32 and sampled.min() >= 0 and sampled.max() < 7
    log_probs = numpy_log_softmax(pinned.astype(np.float64))
    for task in range(3):
        freq = np.bincount(sampled[task * per_task : (task + 1) * per_task], minlength=7) / per_task
        np.testing.assert_allclose(freq, np.exp(log_probs[task]), atol=0.045)  # ≥ 3.5 σ at 1,500 samples
    np.testing.assert_array_equal(
        mp.act(st, obs, task_id, None, deterministic=True), pinned.argmax(-1)[task_id]
    )

    action, log_prob = mp.sample_policy(st.actor, st.actor_params, obs, task_id, jax.random.key(2))
    np.testing.assert_allclose(log_prob, log_probs[np.asarray(task_id), np.asarray(action)], atol=1e-5)
    assert not np.array_equal(action, sampled)  # its own key


# --- 7. configuration errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, pieces",
    [
        ({"torso": "mixture"}, ("torso", "'mixture'", "moore", "moe", "shared")),
        ({"heads": "many"}, ("heads", "'many'", "multi", "single")),
        (
            {"advantage_normalization": "task"},
            ("advantage_normalization", "'task'", "per_task", "batch", "none"),
        ),
        ({"num_experts": 0}, ("num_experts", "0", ">= 1")),
        ({"epochs": 1.5}, ("epochs", "1.5", "integer")),
        ({"steps_per_iteration": True}, ("steps_per_iteration", "True", "integer")),
        ({"minibatch_per_task": -3}, ("minibatch_per_task", "-3")),
        ({"head_hidden": "128"}, ("head_hidden", "'128'")),
        ({"critic_steps": -1}, ("critic_steps", "-1", ">= 0")),
        ({"gamma": 1.5}, ("gamma", "1.5", "[0, 1]")),
        ({"gae_lambda": -0.1}, ("gae_lambda", "-0.1")),
        ({"clip_eps": 0.0}, ("clip_eps", "0.0")),
        ({"entropy_coef": -0.01}, ("entropy_coef", "-0.01")),
        ({"actor_lr": float("nan")}, ("actor_lr", "nan")),
    ],
)  # fmt: skip
def test_config_errors_are_one_line_and_name_the_value_and_choices(changes, pieces):
    with pytest.raises(ValueError) as error:
        mp.Config(**changes)
    message = str(error.value)
    assert "\n" not in message
    for piece in pieces:
        assert piece in message, (piece, message)


def test_config_accepts_the_edges():
    mp.Config(critic_steps=0, entropy_coef=0.0, gamma=1.0, gae_lambda=0.0, torso="shared", heads="single")


def test_make_networks_refuses_continuous_actions():
    spec = envs.make("toy").spec
    with pytest.raises(ValueError, match="discrete") as error:
        mp.make_networks(spec, mp.Config())
    assert "\n" not in str(error.value) and "toy" in str(error.value)


# --- 8. learning (slow) ----------------------------------------------------------------------------------

LEARNING_ITERATIONS = 60
"""Measured on 2 shared CPU cores (2–5 s per iteration): two seeds' 64-episode evaluation return crossed
0.3 after 20–30 iterations (0.30 and 0.20 at 20, 0.38 and 0.51 at 30, 0.69 and 0.77 at 40, 0.90 and 0.80
at 60), so 60 is about twice the crossing point. The whole test took about 3 min."""
LEARNING_MARGIN = 0.3


@pytest.mark.slow
def test_moore_ppo_learns_lavagap():
    """The authors' recipe (MOORE torso, 2 experts, 2,000 steps per iteration, 8 epochs) on LavaGapS7:
    after `LEARNING_ITERATIONS` fits the mean return of 64 sampled-action episodes (as the authors evaluate)
    beats the untrained agent's by `LEARNING_MARGIN` (minigrid's return: 1 − 0.9 · steps / 196 on reaching
    the goal, 0 in lava or at the time limit; the untrained agent scores about 0)."""
    env = envs.make("MiniGrid-MT1", task="LavaGapS7")
    eval_env = envs.make("MiniGrid-MT1", task="LavaGapS7", envs_per_task=16)
    config = mp.Config(torso="moore", num_experts=2)
    start = time.time()
    state = jax.jit(mp.init, static_argnums=(1, 2))(jax.random.key(0), env.spec, config)
    train = jax.jit(lambda s, k: mp.train_iteration(env, s, k))
    scores = jax.jit(lambda s, k: evaluation.run_scored_episodes(eval_env, AGENT, s, k, 4, False))

    untrained = float(np.mean(scores(state, jax.random.key(100))[1]))
    for key in jax.random.split(jax.random.key(1), LEARNING_ITERATIONS):
        state, metrics = train(state, key)
    successes, returns = scores(state, jax.random.key(101))
    trained = float(np.mean(returns))
    print(
        f"LavaGapS7: untrained return {untrained:.3f}, trained {trained:.3f} "
        f"(success {np.mean(successes):.2f}) after {LEARNING_ITERATIONS} iterations, "
        f"{time.time() - start:.0f} s"
    )
    assert int(state.iteration) == LEARNING_ITERATIONS
    assert trained >= untrained + LEARNING_MARGIN, (untrained, trained)

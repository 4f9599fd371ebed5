"""Held-out meta evaluation: episode bookkeeping on the toy env, metaworld's count by hand, bad input, and
parity with `metaworld.evaluation.metalearning_evaluation` on the official backend."""

from __future__ import annotations

import re
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtrl import envs
from mtrl.meta_evaluation import (
    MetaAgent,
    MetaEvalResult,
    _first_to_end,
    meta_evaluate,
    meta_metrics,
    meta_success,
)
from mtrl.types import EnvSpec, GoalSchedule, TimeStep, Transition

# ---------------------------------------------------------------- toy env: bookkeeping and aggregation


def _toy_agent(env, calls):
    """A scripted meta-learner on the toy env whose score depends on adapting to the round's own episodes.

    Exploring (`deterministic=False`): fly to the task's goal centre (every goal lies within the jitter of
    it). `adapt`: the target is the position of the highest reward in the adaptation episodes (next_obs at
    the argmax), i.e. the closest approach to the goal. Scored (`deterministic=True`): even env slots fly to
    the adapted target, odd slots stay put. A protocol that scored with the pre-`adapt` context (target 0),
    adapted on other data or acted deterministically while adapting would score nothing.
    `adapt` records what it receives (through a host callback) so tests can count calls and episodes.
    """
    spec, cfg = env.spec, env.config
    angles = 2 * jnp.pi * jnp.arange(spec.num_tasks) / spec.num_tasks
    centres = cfg.goal_radius * jnp.stack([jnp.cos(angles), jnp.sin(angles)], axis=-1)
    go = (jnp.arange(spec.num_envs) % spec.envs_per_task) % 2 == 0

    def init_adaptation(agent_state, spec, key):
        return {"acts": jnp.zeros((), jnp.int32), "target": jnp.zeros((spec.num_envs, 2))}

    def act(agent_state, context, step, key, deterministic):
        pos = step.obs[:, :2]
        scored = jnp.where(go[:, None], context["target"], pos)
        target = scored if deterministic else centres[step.task_id]
        action = jnp.clip((target - pos) / cfg.step_size, -1.0, 1.0)
        return action, {**context, "acts": context["acts"] + 1}

    def adapt(agent_state, context, episodes, key):
        def record(acts, obs, next_obs, reward, task_id):
            calls.append(
                {"acts": int(acts), "obs": obs, "next_obs": next_obs, "reward": reward, "task": task_id}
            )

        jax.debug.callback(
            record, context["acts"], episodes.obs, episodes.next_obs, episodes.reward, episodes.task_id
        )
        n = episodes.reward.shape[0]
        best = jnp.argmax(episodes.reward.reshape(n, -1), axis=1)
        target = episodes.next_obs.reshape(n, -1, episodes.next_obs.shape[-1])[jnp.arange(n), best, :2]
        return {**context, "target": target}

    return MetaAgent("toy-scripted", init_adaptation, act, adapt)


def _fly(target, goal, steps, cfg):
    """The toy env's dynamics in float64 under "fly to `target`" from the origin: positions, rewards and
    success flags of `steps` steps."""
    pos, out = np.zeros(2), []
    for _ in range(steps):
        pos = np.clip(pos + cfg.step_size * np.clip((target - pos) / cfg.step_size, -1.0, 1.0), -1.0, 1.0)
        dist = np.linalg.norm(pos - goal)
        out.append((pos.copy(), 1.0 - dist + (dist < cfg.success_radius), dist < cfg.success_radius))
    return [np.array(x) for x in zip(*out, strict=True)]


def _expected_scores(env, goal_index):
    """What the scripted agent must score, simulated by hand: per round and env, (success, first success
    step, return, return to success) of one scored episode (all M are the same: deterministic, from reset)."""
    spec, cfg, T = env.spec, env.config, env.spec.episode_length
    angles = 2 * np.pi * np.arange(spec.num_tasks) / spec.num_tasks
    centres = cfg.goal_radius * np.stack([np.cos(angles), np.sin(angles)], axis=-1)
    goals = np.asarray(env.goals, np.float64)
    rounds = goal_index.shape[0]
    out = np.zeros((4, rounds, spec.num_envs))
    for r in range(rounds):
        for e in range(spec.num_envs):
            task = e // spec.envs_per_task
            goal = goals[task, goal_index[r, e]]
            # the adaptation episodes all replay one flight to the centre (each starts at the origin)
            if (e % spec.envs_per_task) % 2:  # odd slots stay at the origin
                dist = np.linalg.norm(goal)
                rewards, success = np.full(T, 1.0 - dist + (dist < cfg.success_radius)), np.full(T, False)
            else:  # even slots fly to the best position of the flight to the centre
                positions, rewards, _ = _fly(centres[task], goal, T, cfg)
                _, rewards, success = _fly(positions[np.argmax(rewards)], goal, T, cfg)
            first = int(np.argmax(success)) + 1 if success.any() else T + 1
            out[:, r, e] = success.any(), first, rewards.sum(), rewards[:first].sum()
    return out


def test_toy_rounds_visit_each_goal_and_adapt_once_on_exactly_the_adaptation_episodes():
    n, m, goals = 2, 3, 6
    env = envs.make("toy", num_tasks=3, envs_per_task=2, goal_sampling="sequential", episodes_per_goal=n + m)
    spec, T = env.spec, env.spec.episode_length
    calls = []
    result = meta_evaluate(
        env,
        _toy_agent(env, calls),
        None,
        jax.random.key(0),
        adaptation_episodes=n,
        scored_episodes=m,
        goals=goals,
    )
    rounds = goals // spec.envs_per_task
    assert result.success.shape == (rounds, spec.num_envs, m)
    # every goal of each task exactly once: slot j plays goal j + 2r in round r
    for t in range(spec.num_tasks):
        played = result.goal_index[:, 2 * t : 2 * t + 2]
        np.testing.assert_array_equal(played, np.arange(rounds)[:, None] * 2 + np.arange(2))
    # adapt once per round, after exactly n episodes of T steps (a fresh context each round), on data
    # generated under that round's goal
    assert len(calls) == rounds
    for r, call in enumerate(calls):
        assert call["acts"] == n * T
        assert call["obs"].shape == (spec.num_envs, n, T, spec.obs_size)
        np.testing.assert_array_equal(call["task"], np.asarray(env.task_id)[:, None, None] + np.zeros((n, T)))
        goal = np.asarray(env.goals)[np.asarray(env.task_id), result.goal_index[r]]  # [envs, 2]
        dist = np.linalg.norm(call["next_obs"][..., :2] - goal[:, None, None, :], axis=-1)
        expected = 1.0 - dist + (dist < env.config.success_radius)
        np.testing.assert_allclose(call["reward"], expected, rtol=1e-5, atol=1e-5)
        # each adaptation episode starts at the origin (a fresh reset on the same goal) and was played with
        # exploring actions (the flight to the task centre, not the scored policy)
        np.testing.assert_allclose(call["obs"][:, :, 0, :2], 0.0)
        np.testing.assert_array_less(0.5, np.linalg.norm(call["next_obs"][:, :, -1, :2], axis=-1))
    # scored with the adapted context: even slots succeed in all m episodes, odd slots never
    go = np.arange(spec.num_envs) % 2 == 0
    np.testing.assert_array_equal(result.success, np.broadcast_to(go[None, :, None], result.success.shape))


def test_toy_scores_match_a_hand_simulation_and_aggregate_per_goal_and_by_metaworlds_count():
    env = envs.make("toy", num_tasks=3, envs_per_task=2, goal_sampling="sequential", episodes_per_goal=4)
    spec = env.spec
    result = meta_evaluate(
        env, _toy_agent(env, []), None, jax.random.key(1), adaptation_episodes=1, scored_episodes=3, goals=4
    )
    success, first, returns, to_success = _expected_scores(env, result.goal_index)
    m = (..., None)  # the three scored episodes replay one another
    np.testing.assert_array_equal(result.success, np.broadcast_to(success[m], result.success.shape) > 0)
    np.testing.assert_array_equal(result.first_success, np.broadcast_to(first[m], result.success.shape))
    np.testing.assert_allclose(result.returns, np.broadcast_to(returns[m], result.returns.shape), rtol=1e-5)
    np.testing.assert_allclose(
        result.returns_to_success, np.broadcast_to(to_success[m], result.returns.shape), rtol=1e-5
    )
    assert (first[:, ::2] < spec.episode_length).all() and (first[:, 1::2] == spec.episode_length + 1).all()
    # known outcome: half the goals of every task succeed in every scored episode
    assert meta_success(spec, result) == {name: 0.5 for name in spec.task_names}
    # metaworld's count: the successful env ends (and restarts) at s, 2s, 3s <= T, before the other env's
    # first end at T, so all 3 counted episodes are successes, with the successful env's return to success
    assert (3 * first[:, ::2] <= spec.episode_length).all()
    assert meta_success(spec, result, count="metaworld") == {name: 1.0 for name in spec.task_names}
    metaworld = meta_metrics(spec, result, prefix="meta_test", count="metaworld")
    np.testing.assert_allclose(metaworld["meta_test/return"], to_success[:, ::2].mean(), rtol=1e-5)
    metrics = meta_metrics(spec, result, prefix="meta_test")
    assert metrics["meta_test/success"] == 0.5
    assert all(metrics[f"meta_test/{name}/success"] == 0.5 for name in spec.task_names)
    np.testing.assert_allclose(metrics["meta_test/return"], returns.mean(), rtol=1e-5)


def test_first_to_end_matches_hand_counts():
    T, ret, full = 500, np.array([1.0, 2.0]), np.array([10.0, 20.0])
    never = T + 1
    cases = [
        ([100, never], [1, 1, 1]),  # ends at 100, 200, 300 before the failure at 500
        ([400, never], [1, 0, 1]),  # 400 (s), 500 (f), 800 (s)
        ([500, never], [1, 0, 1]),  # tie at 500 goes to env 0; tie at 1000 again to env 0
        ([never, never], [0, 0, 0]),  # 500 env0, 500 env1, 1000 env0
        ([never, 250], [1, 0, 1]),  # 250 (s, env1), then the tie at 500: env0 (f) before env1 (s)
    ]
    for first, expected in cases:
        flags, _ = _first_to_end(np.array(first), ret, full, T, 3)
        np.testing.assert_array_equal(flags, expected, err_msg=str(first))
    flags, mean_return = _first_to_end(np.array([400, never]), ret, full, T, 3)
    assert mean_return == pytest.approx((1.0 + 20.0 + 1.0) / 3)


# ---------------------------------------------------------------- bad input


def _spec(name, envs_per_task=2):
    return EnvSpec(
        name=name,
        obs_size=3,
        action_size=2,
        task_names=("a",),
        envs_per_task=envs_per_task,
        episode_length=5,
        goals_per_task=50,
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "MT10"}, "needs an ML benchmark"),
        ({"scored_episodes": 0}, "scored_episodes must be >= 1, got 0"),
        ({"adaptation_episodes": -1}, "adaptation_episodes must be >= 0, got -1"),
        ({"goals": 3}, "multiple of envs_per_task (2)"),
        ({"goals": 52}, "in 1..50, got 52"),
        ({"sampling": "random"}, "goal_sampling='sequential' and episodes_per_goal=13"),
        ({"per_goal": 1}, "episodes_per_goal=13 (adaptation + scored), got 'sequential' and 1"),
    ],
)
def test_bad_input_is_one_line(kwargs, message):
    env = types.SimpleNamespace(
        spec=_spec(kwargs.pop("name", "ML1/reach-v3/test")),
        schedule=GoalSchedule(kwargs.pop("sampling", "sequential"), kwargs.pop("per_goal", 13)),
    )
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        meta_evaluate(env, None, None, jax.random.key(0), **kwargs)
    assert "\n" not in str(info.value)


def test_unknown_count_is_rejected():
    spec = _spec("ML1/reach-v3/test", envs_per_task=1)
    ones = np.ones((1, 1, 1))
    result = MetaEvalResult(ones > 0, ones.astype(int), ones, ones, np.zeros((1, 1), int))
    assert meta_success(spec, result) == {"a": 1.0}
    with pytest.raises(ValueError, match="unknown count 'garage'; valid: per_goal, metaworld"):
        meta_success(spec, result, count="garage")


# ---------------------------------------------------------------- parity with metaworld's helper

# a lattice over reach-v3's goal box (x in [-0.1, 0.1], y in [0.8, 0.9], z in [0.05, 0.3]): adaptation
# sweeps the hand through it, one waypoint every _SWEEP_STEPS steps
_SWEEP = jnp.stack(
    jnp.meshgrid(
        jnp.linspace(-0.1, 0.1, 3), jnp.array([0.8, 0.9]), jnp.linspace(0.05, 0.3, 4), indexing="ij"
    ),
    -1,
).reshape(-1, 3)
_SWEEP_STEPS = 40


def _reach_search_agent():
    """A deterministic meta-learner for reach-v3: sweep the goal box while adapting, then steer to the hand
    position of the highest reward seen, with metaworld's scripted reach control (`SawyerReachV3Policy`:
    delta = 5 (target - hand), no grip). Whether it succeeds depends on the hidden goal."""

    def init_adaptation(agent_state, spec, key):
        n = spec.num_envs
        return {"t": jnp.zeros((), jnp.int32), "target": jnp.zeros((n, 3), jnp.float32)}

    def act(agent_state, context, step, key, deterministic):
        waypoint = _SWEEP[(context["t"] // _SWEEP_STEPS) % len(_SWEEP)]
        hand = step.obs[:, :3]
        delta = jnp.where(deterministic, 5.0 * (context["target"] - hand), 50.0 * (waypoint[None, :] - hand))
        action = jnp.concatenate([delta, jnp.zeros((hand.shape[0], 1))], axis=1)
        return action.astype(jnp.float32), {**context, "t": context["t"] + 1}

    def adapt(agent_state, context, episodes, key):
        n = episodes.reward.shape[0]
        best = jnp.argmax(episodes.reward.reshape(n, -1), axis=1)
        hands = episodes.obs.reshape(n, -1, episodes.obs.shape[-1])[:, :, :3]
        return {**context, "target": hands[jnp.arange(n), best]}

    return MetaAgent("reach-search", init_adaptation, act, adapt)


class _MetaworldAdapter:
    """Our `MetaAgent` behind metaworld's `MetaLearningAgent` protocol, on float32 obs and rewards as our
    official backend hands them to the agent; `adapt` gets the same [envs, N, T] transitions."""

    def __init__(self, agent, num_envs, obs_size, adaptation_episodes, episode_length):
        self.agent, self.n, self.t = agent, adaptation_episodes, episode_length
        self.spec = types.SimpleNamespace(num_envs=num_envs, obs_size=obs_size)
        self._act = jax.jit(agent.act, static_argnums=4)
        self._adapt = jax.jit(agent.adapt)

    def _step(self, obs):
        obs = jnp.asarray(np.asarray(obs, np.float32))
        zeros = jnp.zeros(obs.shape[0], bool)
        return TimeStep(
            obs, jnp.zeros(obs.shape[0]), zeros, zeros, zeros, jnp.zeros(obs.shape[0], jnp.int32), obs, zeros
        )

    def init(self):
        self.context = self.agent.init_adaptation(None, self.spec, jax.random.key(0))
        self.obs, self.rewards = [], []

    def adapt_action(self, obs):
        action, self.context = self._act(None, self.context, self._step(obs), jax.random.key(0), False)
        return np.asarray(action), {}

    def step(self, timestep):
        self.obs.append(np.asarray(timestep.observation, np.float32))
        self.rewards.append(np.asarray(timestep.reward, np.float32))

    def adapt(self):
        envs_, n, t = self.spec.num_envs, self.n, self.t
        obs = np.swapaxes(np.stack(self.obs), 0, 1).reshape(envs_, n, t, -1)
        reward = np.swapaxes(np.stack(self.rewards), 0, 1).reshape(envs_, n, t)
        zeros = jnp.zeros(reward.shape)
        # metaworld hands the agent no next_obs; this agent reads obs and reward only
        episodes = Transition(jnp.asarray(obs), zeros, jnp.asarray(reward), jnp.asarray(obs), zeros, zeros)
        self.context = self._adapt(None, self.context, episodes, jax.random.key(0))

    def eval_action(self, obs):
        action, self.context = self._act(None, self.context, self._step(obs), jax.random.key(0), True)
        return np.asarray(action)

    def reset(self, env_mask):
        pass


def _metaworld_numbers(env_id, agent, *, seed, envs_per_task, rounds, n, m, **make_kwargs):
    import gymnasium as gym
    import metaworld  # noqa: F401  (registers the Meta-World gym ids)
    from metaworld.evaluation import metalearning_evaluation

    vec = gym.make_vec(
        env_id,
        seed=seed,
        meta_batch_size=make_kwargs.pop("meta_batch_size"),
        total_tasks_per_cls=envs_per_task * rounds,
        **make_kwargs,
    )
    try:
        adapter = _MetaworldAdapter(agent, vec.num_envs, 39, n, 500)
        return metalearning_evaluation(
            adapter, vec, num_evals=rounds, adaptation_episodes=n, evaluation_episodes=m
        )
    finally:
        vec.close()


@pytest.mark.parametrize(("envs_per_task", "rounds"), [(4, 2), (1, 4)])
def test_parity_with_metaworld_ml1_reach(envs_per_task, rounds):
    """Same agent, seed and goals: our evaluator (count="metaworld") gives metaworld's numbers exactly.

    Small counts to stay fast: 8 or 4 goals, 2 adaptation and 3 scored episodes. With 1 env per task a
    failed goal takes 3 full episodes in metaworld, which exercises the replay model of its count."""
    seed, E, n, m = 3, envs_per_task, 2, 3
    agent = _reach_search_agent()
    env = envs.make(
        "ML1",
        task="reach-v3",
        split="test",
        backend="official",
        seed=seed,
        envs_per_task=E,
        goal_sampling="sequential",
        episodes_per_goal=n + m,
    )
    ours = meta_evaluate(
        env, agent, None, jax.random.key(0), adaptation_episodes=n, scored_episodes=m, goals=E * rounds
    )
    mean_success, mean_return, per_task = _metaworld_numbers(
        "Meta-World/ML1-test",
        agent,
        seed=seed,
        envs_per_task=E,
        rounds=rounds,
        n=n,
        m=m,
        env_name="reach-v3",
        meta_batch_size=E,
    )
    metrics = meta_metrics(env.spec, ours, count="metaworld")
    assert meta_success(env.spec, ours, count="metaworld") == pytest.approx(per_task, abs=1e-12)
    assert metrics["meta_test/success"] == pytest.approx(mean_success, abs=1e-12)
    assert metrics["meta_test/return"] == pytest.approx(mean_return, rel=1e-5)
    assert 0 < ours.success.mean() < 1  # the outcome depends on the goal: a discriminating check

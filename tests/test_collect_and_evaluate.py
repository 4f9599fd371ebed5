"""What the off-policy loop stores and how it evaluates, inspected directly on the toy env.

Replay after collect across an auto-reset, who acts during warm-up, and both evaluation protocols: every goal
exactly once with success at any step (all-goals), random goals with sampled actions (MOORE's).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from mtrl.agents import mt_sac
from mtrl.envs import PointMass, PointMassConfig, make

from mtrl import evaluation, offpolicy, training
from mtrl.types import Agent

HORIZON = 5


def small_agent() -> Agent:
    config = mt_sac.Config(hidden_sizes=(8,))
    return Agent("mt_sac", functools.partial(mt_sac.init, config=config), mt_sac.act, mt_sac.update)


def constant_agent(value: float) -> Agent:
    """An agent whose policy always answers `value` (stands in for a trained policy in warm-up checks)."""
    base = small_agent()
    act = lambda state, obs, task_id, key, deterministic: jnp.full((obs.shape[0], 2), value)
    return base._replace(act=act)


def test_replay_after_collect_holds_the_final_observation_and_no_termination_on_truncation():
    env = make("toy", envs_per_task=2, num_tasks=2, max_episode_steps=HORIZON)
    agent = small_agent()
    state = offpolicy.init_state(env, agent, jax.random.key(0), replay_capacity=16)
    steps = []
    for _ in range(HORIZON + 2):  # across the auto-reset at step HORIZON
        previous = state.timestep
        state, _ = offpolicy.collect_step(env, agent, True, state, None)
        steps.append((previous, state.timestep))
    data = jax.device_get(state.replay.data)
    for t, (previous, step) in enumerate(steps):
        for env_index in range(env.spec.num_envs):
            task, slot = divmod(env_index, env.spec.envs_per_task)
            row = t * env.spec.envs_per_task + slot
            np.testing.assert_array_equal(data.obs[task, row], previous.obs[env_index])
            np.testing.assert_array_equal(data.next_obs[task, row], step.final_obs[env_index])
            assert data.terminated[task, row] == 0.0
        assert bool(step.truncated.all()) == (t == HORIZON - 1)
    # at the truncation step, replay's next_obs is the ended episode's last observation, not the reset one
    _, cut = steps[HORIZON - 1]
    assert not np.allclose(cut.final_obs, cut.obs)
    np.testing.assert_array_equal(data.next_obs[:, (HORIZON - 1) * 2], np.asarray(cut.final_obs)[::2])
    np.testing.assert_array_equal(cut.obs[:, :2], np.zeros((4, 2)))  # the toy env resets to the origin


@pytest.mark.parametrize("warmup_actions", ["policy", "uniform"])
def test_warm_up_acts_with_the_policy_or_uniformly(warmup_actions):
    env = make("toy", envs_per_task=2, num_tasks=2)
    config = training.LoopConfig(
        steps_per_task=20, warmup_steps_per_task=20, steps_per_iteration=10, batch_per_task=4,
        replay_per_task=64, eval_every_steps_per_task=0, eval_envs_per_task=2, eval_goals_per_task=2,
        warmup_actions=warmup_actions,
    )  # fmt: skip
    state, _ = training.train(env, env, constant_agent(0.3), config, jax.random.key(0))
    actions = np.asarray(state.replay.data.action)[:, : int(state.replay.size)]
    if warmup_actions == "policy":
        np.testing.assert_array_equal(actions, np.float32(0.3))
    else:
        assert actions.min() < -0.5 and actions.max() > 0.5 and not np.any(actions == np.float32(0.3))


def test_unknown_warmup_actions_is_a_one_line_error():
    with pytest.raises(ValueError, match="unknown loop.warmup_actions 'random'; valid: uniform, policy"):
        training.check_loop_config(training.LoopConfig(warmup_actions="random"), 1)


class Recorded:
    """The real toy env, with every step's goal, success and episode end recorded on the host."""

    def __init__(self, env):
        self.env, self.spec, self.log = env, env.spec, []

    def reset(self, key):
        return self.env.reset(key)

    def step(self, state, action):
        new_state, step = self.env.step(state, action)
        record = lambda *x: self.log.append(tuple(np.asarray(v) for v in x))
        jax.debug.callback(record, state.goal_index, step.success, step.truncated, ordered=True)
        return new_state, step


def per_episode(log, num_envs):
    """(goal, any-step success) of every episode of every env, from the recorded steps."""
    episodes = [[] for _ in range(num_envs)]
    succeeded = np.zeros(num_envs, bool)
    for goal, success, ended in log:
        succeeded |= success
        for i in np.flatnonzero(ended):
            episodes[i].append((int(goal[i]), bool(succeeded[i])))
        succeeded &= ~ended
    return episodes


def noisy_agent() -> Agent:
    """A random-walk policy: successes on some steps of some episodes, not at every step."""
    base = small_agent()
    act = lambda state, obs, task_id, key, deterministic: jax.random.uniform(
        key, (obs.shape[0], 2), minval=-1
    )
    return base._replace(act=act)


def test_all_goals_plays_every_goal_once_and_counts_success_at_any_step():
    config = PointMassConfig(num_tasks=2, goals_per_task=6, episode_length=8, success_radius=0.45,
                             goal_radius=0.5)  # fmt: skip
    env = Recorded(PointMass(config, envs_per_task=3, goal_sampling="sequential"))
    flags = jax.jit(evaluation.run_episodes, static_argnums=(0, 1, 4, 5))(
        env, noisy_agent(), None, jax.random.key(1), 2, False
    )
    jax.effects_barrier()
    episodes = per_episode(env.log, env.spec.num_envs)
    for task in range(2):
        goals = [g for i in range(3) for g, _ in episodes[3 * task + i]]
        assert sorted(goals) == list(range(6))  # every goal of the task exactly once
    expected = np.array([[s for _, s in env_episodes] for env_episodes in episodes])
    np.testing.assert_array_equal(np.asarray(flags), expected)
    # the check has teeth: some episodes succeeded only before their last step
    final_success = np.array([[bool(env.log[(e + 1) * 8 - 1][1][i]) for e in range(2)] for i in range(6)])
    assert np.any(expected & ~final_success) and np.any(~expected)


def test_moore_protocol_draws_random_goals_and_samples_actions():
    config = PointMassConfig(num_tasks=2, goals_per_task=50, episode_length=4)
    env = Recorded(PointMass(config, envs_per_task=2, goal_sampling="random"))
    agent = small_agent()
    state = agent.init(jax.random.key(0), env.spec)
    play = jax.jit(evaluation.run_episodes, static_argnums=(0, 1, 4, 5))
    play(env, agent, state, jax.random.key(3), 5, False)
    jax.effects_barrier()
    goals = np.array([g for g, _, ended in env.log if ended.any()])
    assert len(np.unique(goals)) > 5  # goals drawn afresh at every reset, not a fixed sequence
    # sampled actions differ between keys; deterministic ones do not
    obs = jnp.zeros((4, env.spec.obs_size))
    task_id = jnp.array([0, 0, 1, 1])
    sampled = [agent.act(state, obs, task_id, jax.random.key(k), False) for k in (0, 1)]
    assert not np.allclose(sampled[0], sampled[1])
    mean = [agent.act(state, obs, task_id, jax.random.key(k), True) for k in (0, 1)]
    np.testing.assert_array_equal(mean[0], mean[1])


def test_sampled_episodes_per_env_refuses_a_count_the_envs_cannot_share():
    spec = make("toy", envs_per_task=3).spec
    assert evaluation.sampled_episodes_per_env(spec, 9) == 3
    with pytest.raises(ValueError, match="loop.moore_eval_episodes must be a positive multiple"):
        evaluation.sampled_episodes_per_env(spec, 10)


def test_training_logs_both_protocols_when_asked():
    env = make("toy", envs_per_task=2, num_tasks=2)
    moore_env = make("toy", envs_per_task=2, num_tasks=2, goal_sampling="random")
    eval_env = make("toy", envs_per_task=2, num_tasks=2, goal_sampling="sequential")
    config = training.LoopConfig(
        steps_per_task=20, warmup_steps_per_task=10, steps_per_iteration=10, batch_per_task=4,
        replay_per_task=64, eval_every_steps_per_task=0, eval_envs_per_task=2, eval_goals_per_task=2,
        moore_eval_episodes=4,
    )  # fmt: skip
    _, final = training.train(
        env, eval_env, small_agent(), config, jax.random.key(0), moore_eval_env=moore_env
    )
    assert {"eval/success", "eval_moore/success"} <= set(final)
    assert {f"eval_moore/point-goal-{t}/success" for t in range(2)} <= set(final)
    with pytest.raises(ValueError, match="needs a MOORE-protocol eval env exactly when it is > 0"):
        training.train(env, eval_env, small_agent(), config, jax.random.key(0))


def test_an_evaluation_reports_each_round_and_plays_the_same_episodes_with_or_without_it():
    config = PointMassConfig(num_tasks=2, goals_per_task=6, episode_length=8)
    env = PointMass(config, envs_per_task=3, goal_sampling="sequential")
    rounds = []
    play = functools.partial(evaluation.run_scored_episodes, env, noisy_agent(), None, jax.random.key(1), 2)
    reported = jax.jit(lambda: play(False, rounds.append))()
    jax.effects_barrier()
    assert sorted(int(r) for r in rounds) == [1, 2]  # one report per round of episodes
    for a, b in zip(reported, jax.jit(lambda: play(False))(), strict=True):
        np.testing.assert_array_equal(a, b)

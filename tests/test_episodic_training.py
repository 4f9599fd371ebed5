"""The episodic loop (MT-PPO and the meta-RL agents) end to end: runs, evaluation, exact resume, bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import jax
import numpy as np
import pytest
from mtrl.agents import maml, mt_ppo
from rich.console import Console

from mtrl import envs, episodic_training
from mtrl.app import wiring
from mtrl.app.config import EnvConfig, TrainConfig
from mtrl.app.policy import load_meta_agent, load_policy
from mtrl.app.run import evaluate_run, train
from mtrl.logger import WandbConfig
from mtrl.meta_evaluation import meta_evaluate
from mtrl.report.runs import read_run_dir
from mtrl.training import Hooks, Interrupted, LoopConfig, Start

QUIET = Console(quiet=True)

TINY_LOOP = LoopConfig(
    steps_per_task=400,
    eval_every_steps_per_task=200,
    eval_envs_per_task=2,
    eval_goals_per_task=2,
    log_every_steps_per_task=100,
    checkpoint_every_steps_per_task=200,
    meta_adaptation_episodes=1,
    meta_scored_episodes=1,
)


def _mt_ppo_config(tmp_path, **changes) -> TrainConfig:
    return TrainConfig(
        agent=mt_ppo.Config(policy_hidden_sizes=(16,), value_hidden_sizes=(16,), epochs=2),
        env=EnvConfig(name="toy", toy_num_tasks=2, envs_per_task=2),
        loop=TINY_LOOP,
        wandb=WandbConfig(mode="disabled"),
        run_dir=tmp_path / "run",
        **changes,
    )


def _maml_config(tmp_path, **changes) -> TrainConfig:
    return TrainConfig(
        agent=maml.Config(hidden_sizes=(16,), episodes_per_task=1),
        env=EnvConfig(name="toy-ml", envs_per_task=4),
        loop=TINY_LOOP,
        wandb=WandbConfig(mode="disabled"),
        run_dir=tmp_path / "run" if tmp_path else None,
        **changes,
    )


def _records(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_mt_ppo_run_logs_trains_evaluates_and_reevaluates(tmp_path):
    result = train(_mt_ppo_config(tmp_path), console=QUIET)
    records = _records(result.run_dir)
    assert any("train/policy_loss" in r or "train/success" in r for r in records)
    evals = [r for r in records if "eval/success" in r]
    assert [r["env/steps_per_task"] for r in evals] == [200, 400]
    assert set(result.success_per_task) == {"point-goal-0", "point-goal-1"}
    assert (result.run_dir / "plots" / "success_curve.png").exists()
    again = evaluate_run(result.run_dir, console=QUIET)
    assert set(again.success_per_task) == set(result.success_per_task)


def test_meta_run_reports_meta_test_and_meta_train_success(tmp_path):
    result = train(_maml_config(tmp_path), console=QUIET)
    records = _records(result.run_dir)
    final = [r for r in records if "meta_test/success" in r][-1]
    assert 0.0 <= final["meta_test/success"] <= 1.0
    assert "meta_train/success" in final and "meta_test/point-goal-0/success" in final
    assert set(result.success_per_task) == {"point-goal-0"}
    assert "Meta-test success" in (result.run_dir / "success_table.md").read_text()
    again = evaluate_run(result.run_dir, console=QUIET, protocol="meta")
    assert set(again.success_per_task) == {"point-goal-0"}
    loaded = load_meta_agent(result.run_dir)  # and in other code, with the evaluator
    test_env = envs.make(
        "toy-ml", split="test", envs_per_task=2, goal_sampling="sequential", episodes_per_goal=2
    )
    own = meta_evaluate(
        test_env,
        loaded.agent,
        loaded.state,
        jax.random.key(0),
        adaptation_episodes=1,
        scored_episodes=1,
        goals=2,
    )
    assert own.success.shape == (1, 2, 1)
    with pytest.raises(ValueError, match="meta-RL agent \\(maml\\).*use load_meta_agent"):
        load_policy(result.run_dir)
    (seed,) = read_run_dir(result.run_dir)  # mtrl report reads the meta-test evaluation
    assert seed.benchmark == "toy-ml meta-test" and seed.task_names == ("point-goal-0",)
    assert seed.success[-1] == final["meta_test/success"]


def test_meta_run_with_two_vmapped_seeds_reports_each_seed(tmp_path):
    result = train(_maml_config(tmp_path, num_seeds=2), console=QUIET)
    final = [r for r in _records(result.run_dir) if "meta_test/success" in r][-1]
    seeds = [final["meta_test/seed0/success"], final["meta_test/seed1/success"]]
    assert final["meta_test/success"] == pytest.approx(np.mean(seeds))


def test_stopped_and_resumed_loop_equals_the_uninterrupted_one():
    """Stop after the first iteration (as SIGTERM does), restart from its checkpoint: same final state."""
    config = _maml_config(None)
    train_env, eval_envs = wiring.make_envs(config)
    agent = wiring.make_agent(config)
    key = jax.random.key(5)
    loop = TINY_LOOP
    full, _ = episodic_training.train(train_env, eval_envs, agent, loop, key)

    saved = {}
    hooks = Hooks(
        checkpoint=lambda step, state, iteration: saved.update(state=state, iteration=iteration),
        stop_requested=lambda: True,
    )
    with pytest.raises(Interrupted):
        episodic_training.train(train_env, eval_envs, agent, loop, key, hooks=hooks)
    assert saved["iteration"] == 1 < episodic_training.num_iterations(loop, agent, train_env.spec)
    resumed, _ = episodic_training.train(
        train_env, eval_envs, agent, loop, key, start=Start(saved["state"], saved["iteration"])
    )
    for a, b in zip(jax.tree.leaves(full), jax.tree.leaves(resumed), strict=True):
        np.testing.assert_array_equal(a, b)


def test_training_env_holds_goals_for_the_agents_episodes_per_goal(tmp_path):
    config = _maml_config(tmp_path)
    train_env, eval_envs = wiring.make_envs(config)
    assert train_env.episodes_per_goal == maml.episodes_per_goal(config.agent)
    assert eval_envs.test.episodes_per_goal == 2 and eval_envs.test.goal_sampling == "sequential"
    assert not np.allclose(eval_envs.test.goals, train_env.goals)  # held-out goals


@pytest.mark.parametrize(
    ("agent", "env", "message"),
    [
        ("maml", "MT10", "maml is a meta-RL agent and MT10 a multi-task benchmark; meta-RL agents train on"),
        ("mt_ppo", "toy-ml", "toy-ml is a meta-RL benchmark and mt_ppo is a multi-task agent"),
        ("mt_sac", "ML10", "ML10 is a meta-RL benchmark and mt_sac is a multi-task agent"),
    ],
)
def test_agent_benchmark_mismatch_is_one_line(agent, env, message):
    process = subprocess.run(
        [sys.executable, "-m", "mtrl.app.cli", "train", "--agent", agent, "--env.name", env],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    assert process.returncode == 2
    assert message in process.stderr and len(process.stderr.strip().splitlines()) == 1


def test_mt_agent_asked_for_adaptation_is_one_line(tmp_path):
    run = train(_mt_ppo_config(tmp_path), console=QUIET).run_dir
    process = subprocess.run(
        [sys.executable, "-m", "mtrl.app.cli", "evaluate", str(run), "--protocol", "meta"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    assert process.returncode == 2
    assert "mt_ppo is a multi-task agent and cannot adapt" in process.stderr
    assert len(process.stderr.strip().splitlines()) == 1


def test_meta_env_options_reach_every_backend():
    env = envs.make("toy-ml", split="test", goal_sampling="sequential", episodes_per_goal=3, envs_per_task=2)
    assert env.spec.name == "toy-ml" and env.episodes_per_goal == 3

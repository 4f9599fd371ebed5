"""Several seeds in one program on Meta-World's native backend (`envs.make(..., seeds=N)`, `--num-seeds N`).

The host holds one copy of the env batch per seed and a `custom_vmap` rule steps them all in one call; each
seed must see exactly the env it would see alone, and a run must checkpoint and resume every copy exactly.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jax
import numpy as np
import pytest
from helpers import assert_same_run
from mtrl.agents import mt_sac

from mtrl import envs
from mtrl.app import cli, wiring
from mtrl.app.config import EnvConfig, TrainConfig, load_run_config
from mtrl.app.flags import to_flags
from mtrl.app.resume import resume
from mtrl.logger import WandbConfig, read_metrics
from mtrl.training import LoopConfig

HORIZON = 20  # episodes end (and the host resets envs) inside the rollouts below


def rollout(env, key, actions):
    """Reset, then step through `actions` ([steps, envs, act]): every TimeStep's obs, reward, success and
    truncation."""
    state, _ = env.reset(key)

    def step(state, action):
        state, ts = env.step(state, action)
        return state, (ts.obs, ts.reward, ts.success, ts.truncated)

    return jax.lax.scan(step, state, actions)[1]


@pytest.mark.parametrize("goal_sampling", ["random", "sequential"])
def test_each_vmapped_seed_steps_exactly_the_env_it_would_step_alone(goal_sampling):
    """MT10, one env per task, 45 steps over two resets, different random actions per seed. Sequential
    goals give both seeds the same first reset request: it must still reach every copy."""
    make = dict(envs_per_task=1, goal_sampling=goal_sampling, max_episode_steps=HORIZON)
    together = envs.make("MT10", seeds=2, **make)
    spec = together.spec
    assert together.vmappable and together.steps_on_host
    keys = jax.random.split(jax.random.key(1), 2)
    shape = (2, 45, spec.num_envs, spec.action_size)
    actions = jax.random.uniform(jax.random.key(2), shape, minval=-1, maxval=1)
    batched = jax.jit(jax.vmap(lambda key, a: rollout(together, key, a)))(keys, actions)
    for seed in range(2):
        alone = envs.make("MT10", **make)
        assert not alone.vmappable
        obs, reward, success, truncated = jax.jit(lambda k, a, env=alone: rollout(env, k, a))(
            keys[seed], actions[seed]
        )
        np.testing.assert_array_equal(batched[0][seed], obs)  # the physics, bit for bit
        np.testing.assert_allclose(batched[1][seed], reward, rtol=1e-5, atol=1e-5)  # vmapped JAX reward
        np.testing.assert_array_equal(batched[2][seed], success)
        np.testing.assert_array_equal(batched[3][seed], truncated)
        assert truncated.any()
        alone.close()
    with pytest.raises(ValueError, match="built for 2 vmapped seeds, not 3"):
        jax.jit(jax.vmap(together.reset)).lower(jax.random.split(jax.random.key(0), 3))
    with pytest.raises(Exception, match="holds 2 copies of its batch, one per seed: call it under jax.vmap"):
        together.reset(keys[0])
    together.close()


LOOP = LoopConfig(
    steps_per_task=400,
    warmup_steps_per_task=100,
    steps_per_iteration=25,
    batch_per_task=16,
    replay_per_task=1_000,
    eval_every_steps_per_task=200,
    eval_envs_per_task=2,
    eval_goals_per_task=2,
    log_every_steps_per_task=100,
    checkpoint_every_steps_per_task=100,
)


def test_two_seeds_train_resume_and_evaluate_on_the_native_backend(tmp_path):
    """`--num-seeds 2` on MT1 reach: a run trained to half the budget and resumed to the full one ends
    bit-identical to the straight run (the host's copies go through the checkpoint), and the checkpoint
    evaluates per seed both on the native backend (vmapped) and on metaworld's own envs (one seed after
    another)."""
    config = TrainConfig(
        agent=mt_sac.Config(hidden_sizes=(16,), initial_alpha=0.1),
        env=EnvConfig(name="MT1", task="reach-v3", envs_per_task=2, max_episode_steps=50, backend="native"),
        loop=LOOP,
        num_seeds=2,
        wandb=WandbConfig(mode="disabled"),
    )
    assert wiring.vmaps_seeds(config)
    straight = cli.main(["train", *to_flags(config), "--run-dir", str(tmp_path / "straight")])
    assert straight == 0
    half = dataclasses.replace(config, loop=dataclasses.replace(LOOP, steps_per_task=200))
    assert cli.main(["train", *to_flags(half), "--run-dir", str(tmp_path / "halves")]) == 0
    resume(tmp_path / "halves", dataclasses.replace(load_run_config(tmp_path / "halves"), loop=LOOP))
    for run in ("straight", "halves"):  # at step 200 the shorter budget's final evaluation (every goal) ran
        kept = [
            {k: v for k, v in r.items() if r["step"] != 200 or not k.startswith("eval/")}
            for r in read_metrics(tmp_path / run)
        ]
        (tmp_path / run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
    assert_same_run(tmp_path / "straight", tmp_path / "halves")

    final = read_metrics(tmp_path / "straight")[-1]
    assert {"eval/seed0/success", "eval/seed1/success"} <= set(final)
    for backend in ("native", "official"):
        assert cli.main(["evaluate", str(tmp_path / "straight"), "--backend", backend]) == 0
    evaluations = {
        record["backend"]: record
        for record in map(json.loads, map(Path.read_text, (tmp_path / "straight").glob("evaluation-*.json")))
    }
    seeds = [f"eval/seed{s}/return" for s in range(2)]
    native, official = ([evaluations[b][k] for k in seeds] for b in ("native", "official"))
    assert native == pytest.approx([final[k] for k in seeds], rel=1e-4)  # the run's own final evaluation
    assert official == pytest.approx(native, rel=1e-3)  # the same policies in metaworld's envs

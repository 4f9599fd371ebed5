"""Slow learning check on real Meta-World (not in CI): `pytest -m slow tests/test_slow_learning.py`."""

import dataclasses
import time

import pytest
from mtrl.agents import moore_sac

from mtrl.app.config import EnvConfig, TrainConfig
from mtrl.app.run import train
from mtrl.logger import WandbConfig
from mtrl.training import LoopConfig

REACH = TrainConfig(
    preset="slow-test-reach",
    env=EnvConfig(name="MT1", task="reach-v3", envs_per_task=10),
    agent=moore_sac.Config(hidden_sizes=(128, 128), num_experts=4, initial_alpha=0.1),
    loop=LoopConfig(
        steps_per_task=200_000,
        warmup_steps_per_task=5_000,
        steps_per_iteration=50,
        updates_per_step=2,
        batch_per_task=256,
        replay_per_task=100_000,
        eval_every_steps_per_task=25_000,
        eval_envs_per_task=50,
        eval_goals_per_task=50,
        log_every_steps_per_task=5_000,
    ),
    wandb=WandbConfig(mode="disabled"),
)


@pytest.mark.slow
def test_moore_sac_solves_mt1_reach(tmp_path):
    start = time.perf_counter()
    result = train(dataclasses.replace(REACH, run_dir=tmp_path / "reach"))
    minutes = (time.perf_counter() - start) / 60
    print(
        f"MT1 reach-v3: success {result.mean_success:.3f} after "
        f"{REACH.loop.steps_per_task:,} env steps in {minutes:.1f} min"
    )
    assert result.mean_success >= 0.9

"""MOORE-SAC against MT-SAC on the toy point-mass env, 3 seeds each: a sweep that runs in minutes on a CPU.

    mtrl sweep experiments/sweeps/toy_methods.py            # or: python experiments/sweeps/toy_methods.py
    mtrl sweep experiments/sweeps/toy_methods.py --dry-run  # list the runs and their commands, start nothing

The toy env is pure JAX, so the 3 seeds of each method train together in one vmapped program: 2 runs,
`runs/sweeps/toy-methods/{moore,mtsac}-s0-2`. Run it again and finished runs are skipped.
"""

from __future__ import annotations

import dataclasses
import sys

from mtrl.agents import moore_sac, mt_sac

from mtrl.app.config import EnvConfig
from mtrl.app.presets import get_preset
from mtrl.app.sweep_grid import Sweep
from mtrl.logger import WandbConfig
from mtrl.training import LoopConfig

BASE = dataclasses.replace(
    get_preset("quickstart"),
    env=EnvConfig(name="toy", toy_num_tasks=4, envs_per_task=4),
    loop=LoopConfig(
        steps_per_task=6_000,
        warmup_steps_per_task=500,
        steps_per_iteration=25,
        batch_per_task=64,
        replay_per_task=6_000,
        eval_every_steps_per_task=2_000,
        eval_envs_per_task=10,
        eval_goals_per_task=10,
        log_every_steps_per_task=500,
        checkpoint_every_steps_per_task=1_000,
    ),
    wandb=WandbConfig(mode="disabled"),
)

SWEEP = Sweep(
    name="toy-methods",
    base=BASE,
    variants={
        "moore": {"agent": moore_sac.Config(hidden_sizes=(32, 32), num_experts=3, initial_alpha=0.1)},
        "mtsac": {"agent": mt_sac.Config(hidden_sizes=(32, 32), initial_alpha=0.1)},
    },
    seeds=[0, 1, 2],
)

if __name__ == "__main__":
    from mtrl.app.sweep import main

    sys.exit(main([__file__, *sys.argv[1:]]))

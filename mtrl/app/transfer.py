"""Transfer between MiniGrid task sets: start a run from the expert CNNs of a finished one.

The MOORE authors' transfer runs (run_minigrid_ppo_tl.py, run/minigrid/transfer/*.sh) train on the tasks a
larger set adds (TL3→5: DoorKey-6x6 and DistShift1) with the actor's and critic's expert CNNs loaded from the
final weights of the smaller set's run and frozen; task weights and heads start fresh. Their run i loads
source run i; here seed s loads the source run's seed s. This is the app's half (reading the source run);
the agent's half is `moore_ppo.with_experts` and `moore_ppo.Config.frozen_experts`.
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np

from mtrl import checkpoint
from mtrl.agents import moore_ppo
from mtrl.app import wiring
from mtrl.app.config import TrainConfig, load_run_config
from mtrl.types import EnvSpec


def source_experts(config: TrainConfig) -> tuple:
    """The experts of `config.agent.experts_from` for the run's seeds, stacked on a leading seed axis when the
    run trains several: (actor experts, critic experts)."""
    source_dir = Path(config.agent.experts_from)
    source = load_run_config(source_dir)
    if source.agent_name != "moore_ppo":
        raise ValueError(
            f"--agent.experts-from {source_dir} is a {source.agent_name} run; it must be a moore_ppo run"
        )
    for name in ("torso", "num_experts"):
        if getattr(source.agent, name) != getattr(config.agent, name):
            raise ValueError(
                f"--agent.experts-from {source_dir} has {name}={getattr(source.agent, name)!r}, this run "
                f"{getattr(config.agent, name)!r}; they must match"
            )
    spec = EnvSpec.from_dict(json.loads((source_dir / "spec.json").read_text()))
    latest, final = checkpoint.latest_step(source_dir), wiring.final_step(source, spec)
    if latest < final:
        raise ValueError(
            f"--agent.experts-from {source_dir} is unfinished (checkpoint at step {latest} of {final}); "
            f"transfer starts from a finished run's experts (finish it: mtrl train --resume {source_dir})"
        )
    template = wiring.agent_template(source, spec)
    actor, critic = moore_ppo.experts(checkpoint.restore(source_dir, template, latest))
    source_seeds = [source.seed + i for i in range(source.num_seeds)]
    wanted = [config.seed + i for i in range(config.num_seeds)]
    missing = sorted(set(wanted) - set(source_seeds))
    if missing:
        raise ValueError(
            f"--agent.experts-from {source_dir} trained seeds {source_seeds[0]}..{source_seeds[-1]}; this "
            f"run's seeds {missing} have no source (seed s starts from the source's seed s)"
        )
    rows = np.array([source_seeds.index(seed) for seed in wanted])

    def pick(x: jax.Array) -> jax.Array:
        stacked = x if source.num_seeds > 1 else x[None]  # a single-seed source holds no seed axis
        return stacked[rows] if config.num_seeds > 1 else stacked[rows[0]]

    return jax.tree.map(pick, actor), jax.tree.map(pick, critic)

"""The MOORE paper's MiniGrid multi-task figure as a sweep: {MOORE, MoE, MT-PPO} × {MT3, MT5, MT7} × 30 seeds.

    mtrl sweep experiments/sweeps/minigrid_moore.py --dry-run   # the 9 runs (30 vmapped seeds each)
    mtrl sweep experiments/sweeps/minigrid_moore.py --jobs 1    # all of them, one after another
    MTRL_MINIGRID_SEEDS=5 mtrl sweep experiments/sweeps/minigrid_moore.py --jobs 1   # a CPU-sized subset
    mtrl report runs/sweeps/minigrid-moore --metric return     # average return per method, IQM + CIs

Every run is the authors' recipe (presets `minigrid-<set>-<method>`; docs/fidelity.md, MiniGrid): their
PPO, multi-head networks, 2/3/4 experts for MT3/MT5/MT7, 100 epochs of 2,000 steps per task, evaluation after
every epoch on 16 episodes per task with sampled actions; the paper's metric is the mean undiscounted return
over tasks, `eval_moore/return`. The MiniGrid port is pure JAX, so the seeds of one configuration train in one
vmapped program (one run directory per method and task set). `MTRL_MINIGRID_SEEDS` (default 30, the authors'
`--n_exp 30`) trims the seed count for machines that cannot afford the full figure.
"""

from __future__ import annotations

import os
import sys

from mtrl.app.sweep_grid import Sweep

SEEDS = int(os.environ.get("MTRL_MINIGRID_SEEDS", "30"))

SWEEP = Sweep(
    name="minigrid-moore",
    base="minigrid-mt3-moore",
    variants={
        f"{method}-{task_set}": {"preset": f"minigrid-{task_set}-{method}"}
        for task_set in ("mt3", "mt5", "mt7")
        for method in ("moore", "moe", "mtppo")
    },
    seeds=range(SEEDS),
)

if __name__ == "__main__":
    from mtrl.app.sweep import main

    sys.exit(main([__file__, *sys.argv[1:]]))

"""MOORE against MT-MH-SAC on MT10 at the paper budget, 10 seeds each: the sweep to run on a GPU machine.

    mtrl sweep experiments/sweeps/mt10_moore_vs_mhsac.py --dry-run     # the 20 runs, checked; starts nothing
    mtrl sweep experiments/sweeps/mt10_moore_vs_mhsac.py --jobs 4      # 4 runs at a time on this machine
    mtrl sweep experiments/sweeps/mt10_moore_vs_mhsac.py --wandb-yaml sweep.yaml  # or over many machines

Both methods run the MOORE authors' MT10 setup (Hendawy et al., ICLR 2024; `mt10-moore`, docs/fidelity.md):
horizon 150, 2M steps per task, batch 128 per task, replay 1e6 per task, 1,500 policy warm-up steps per task,
1,500 critic-only updates, actor-first updates, their evaluation protocol beside mtrl's; MOORE with k = 4
experts of 400×3, MT-MH-SAC a 400×3 trunk on obs + one-hot with one head per task, as the authors ran their
multi-head baseline in the same code. Meta-World steps on the host, so every seed is its own run
(`runs/sweeps/mt10-moore-vs-mhsac/<method>-s<seed>`); the native backend is the fast one on CPU cores.
"""

from __future__ import annotations

import sys

from mtrl.app.sweep_grid import Sweep

SWEEP = Sweep(
    name="mt10-moore-vs-mhsac",
    base="mt10-moore",
    variants={
        "moore": {"preset": "mt10-moore", "env.backend": "native"},
        "mhsac": {
            "agent": "mh_sac",
            "agent.actor_first": True,
            "agent.critic_only_updates": 1_500,
            "env.backend": "native",
        },
    },
    seeds=range(10),
)

if __name__ == "__main__":
    from mtrl.app.sweep import main

    sys.exit(main([__file__, *sys.argv[1:]]))

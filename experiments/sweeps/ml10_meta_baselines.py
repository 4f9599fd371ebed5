"""The Meta-World paper's meta-RL table on ML10: MAML-TRPO, RL²-PPO and PEARL, 10 seeds each.

    mtrl sweep experiments/sweeps/ml10_meta_baselines.py --dry-run     # the 30 runs, checked; starts nothing
    mtrl sweep experiments/sweeps/ml10_meta_baselines.py --jobs 2      # 2 runs at a time on this machine
    mtrl report runs/sweeps/ml10-meta-baselines --compare-published    # meta-test success vs the paper

Each method uses its preset (garage's ML10 recipes, see `mtrl.app.presets`): meta-train on ML10's 10 train
tasks, meta-test by adapting on the 5 held-out tasks (10 adaptation episodes, 3 scored, per goal). Published
(Meta-World paper, 10 seeds): meta-test MAML 31.6 %, RL² 35.8 %, PEARL 13.0 %. Every seed is its own run on
the native backend.
"""

from __future__ import annotations

import sys

from mtrl.app.sweep_grid import Sweep

SWEEP = Sweep(
    name="ml10-meta-baselines",
    base="ml10-maml",
    variants={
        "maml": {"preset": "ml10-maml", "env.backend": "native"},
        "rl2": {"preset": "ml10-rl2", "env.backend": "native"},
        "pearl": {"preset": "ml10-pearl", "env.backend": "native"},
    },
    seeds=range(10),
)

if __name__ == "__main__":
    from mtrl.app.sweep import main

    sys.exit(main([__file__, *sys.argv[1:]]))

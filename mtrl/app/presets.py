"""Presets: functions returning a complete `TrainConfig` with published hyperparameters.

Every field stays overridable on the CLI (`mtrl train --preset mt10-moore --agent.num-experts 6`), and scripts
in `experiments/` import these to build sweeps. Sources: MOORE (Hendawy et al., ICLR 2024) for MOORE on
MT10/MT50; the Meta-World and CARE papers' MT-SAC / MT-MH-SAC setups (400×3 networks, 128 rows per task);
CARE, PaCo and Soft Modularization from their papers and released configs (see each agent's docstring).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable

from mtrl.agents import (
    care_sac,
    hyper_sac,
    maml,
    mh_sac,
    moore_ppo,
    moore_sac,
    mt_ppo,
    mt_sac,
    paco_sac,
    pearl,
    rl2,
    softmod_sac,
)
from mtrl.app.config import EnvConfig, TrainConfig
from mtrl.training import LoopConfig

PAPER_LOOP = LoopConfig(
    steps_per_task=2_000_000,
    warmup_steps_per_task=5_000,
    batch_per_task=128,
    replay_per_task=1_000_000,
    eval_every_steps_per_task=50_000,
    eval_envs_per_task=10,
)
"""The budget shared by the SAC-family baselines' presets (2M steps per task, 128 rows per task); each preset
replaces what its own reference sets differently (see docs/fidelity.md)."""

MOORE_LOOP = LoopConfig(
    steps_per_task=2_000_000,
    warmup_steps_per_task=1_500,
    warmup_actions="policy",
    batch_per_task=128,
    replay_per_task=1_000_000,
    eval_every_steps_per_task=100_000,
    eval_envs_per_task=10,
    moore_eval_episodes=10,
)
"""The MOORE authors' schedule (run/metaworld/run_metaworld_mt10_mhsac_mt_moore.sh): 20 epochs of 100k steps
per task, one update per step on 128 rows per task, replay 1e6 per task, the first 1,500 steps per task
collected by the untrained policy, an evaluation after every epoch (their 10 episodes per task on random
goals, sampled actions; mtrl's all-goals protocol beside it)."""

MOORE_HORIZON = 150
"""Episode length of the MOORE authors' Meta-World runs (`--horizon 150`); metaworld's own is 500."""

MOORE_CRITIC_ONLY_UPDATES = 1_500
"""The authors start actor and temperature updates when replay holds 3,000 steps per task
(`--warmup_transitions 3000`), 1,500 updates after the critic's first."""


def quickstart() -> TrainConfig:
    """MOORE-SAC on MT10 at a budget that finishes in about 4 minutes on 2 CPU cores (native backend).

    The MOORE authors' recipe (horizon 150, policy warm-up, actor delay, both evaluation protocols) with small
    experts (4 of 64×64), 20k steps per task, 32 rows per task. It evaluates the untrained agent and then
    every 2,500 steps per task, so the curve has nine points (10 goals per task each; all 50 at the end).
    The temperature starts at 0.1 instead of the paper's 1.0: in a 10k-steps-per-task trial at 1.0 the
    policy's entropy never left its maximum and every task stayed at 0 % success, while at 0.1
    drawer-close, window-close and reach began to succeed by 15k steps.
    """
    return TrainConfig(
        preset="quickstart",
        env=EnvConfig(name="MT10", max_episode_steps=MOORE_HORIZON),
        agent=moore_sac.Config(
            hidden_sizes=(64, 64),
            num_experts=4,
            initial_alpha=0.1,
            critic_only_updates=MOORE_CRITIC_ONLY_UPDATES,
        ),
        loop=dataclasses.replace(
            MOORE_LOOP,
            steps_per_task=20_000,
            batch_per_task=32,
            replay_per_task=20_000,
            eval_every_steps_per_task=2_500,
            eval_goals_per_task=10,
            eval_before_training=True,
            log_every_steps_per_task=500,
        ),
    )


def mt10_moore() -> TrainConfig:
    """MOORE on MT10 as its authors ran it: 4 experts of 400×3, horizon 150, 2M steps per task."""
    return TrainConfig(
        preset="mt10-moore",
        env=EnvConfig(name="MT10", max_episode_steps=MOORE_HORIZON),
        agent=moore_sac.Config(num_experts=4, critic_only_updates=MOORE_CRITIC_ONLY_UPDATES),
        loop=MOORE_LOOP,
    )


def mt50_moore() -> TrainConfig:
    """MOORE on MT50 as its authors ran it: 6 experts, replay 1e5 per task, otherwise as MT10."""
    return TrainConfig(
        preset="mt50-moore",
        env=EnvConfig(name="MT50", max_episode_steps=MOORE_HORIZON),
        agent=moore_sac.Config(num_experts=6, critic_only_updates=MOORE_CRITIC_ONLY_UPDATES),
        loop=dataclasses.replace(MOORE_LOOP, replay_per_task=100_000),
    )


def mt10_mtsac() -> TrainConfig:
    """MT-SAC on MT10 as the Meta-World paper's garage example ran it (`mtsac_metaworld_mt10.py`): one 400×3
    network on obs + one-hot, one temperature per task, warm-up 1,500 steps in all by the initial policy,
    replay 1e6 in all; metaworld's 500-step horizon (docs/fidelity.md lists what still differs)."""
    return TrainConfig(
        preset="mt10-mtsac",
        env=EnvConfig(name="MT10"),
        agent=mt_sac.Config(alpha_lr=3e-4, log_std_min=-20.0),
        loop=dataclasses.replace(
            PAPER_LOOP, warmup_steps_per_task=150, warmup_actions="policy", replay_per_task=100_000
        ),
    )


CARE_LOOP = dataclasses.replace(PAPER_LOOP, warmup_steps_per_task=1_500, replay_per_task=100_000)
"""CARE's mtrl code (`config/experiment/metaworld.yaml`, `config/replay_buffer/mtrl.yaml`): 1,500 steps per
task of uniform actions before updates, replay 1e6 in all (here 1e5 per task)."""
CARE_HORIZON = 150
"""Episode length in CARE's mtrl code (`mtrl/experiment/metaworld.py`)."""
CARE_SAC = {"alpha_lr": 3e-4, "log_std_min": -20.0, "temperature_loss": "alpha"}
"""The SAC settings of CARE's mtrl code for its Meta-World runs (`state_sac.yaml`, optimiser configs)."""


def mt10_mhsac() -> TrainConfig:
    """MT-MH-SAC on MT10 as CARE's mtrl code ran it for the CARE paper: a shared trunk of 4×400 with one head
    per task, horizon 150, 1,500 uniform warm-up steps per task."""
    return TrainConfig(
        preset="mt10-mhsac",
        env=EnvConfig(name="MT10", max_episode_steps=CARE_HORIZON),
        agent=mh_sac.Config(hidden_sizes=(400, 400, 400, 400), **CARE_SAC),
        loop=CARE_LOOP,
    )


def mt10_care() -> TrainConfig:
    """CARE on MT10 (Sodhani et al., ICML 2021) as its authors' mtrl code ran it: 4 encoders, 50-d context,
    400×3 networks, horizon 150, 1,500 uniform warm-up steps per task."""
    return TrainConfig(
        preset="mt10-care",
        env=EnvConfig(name="MT10", max_episode_steps=CARE_HORIZON),
        agent=care_sac.Config(**CARE_SAC),
        loop=CARE_LOOP,
    )


PACO_LOG_ALPHA_TARGET = 4 * (math.log(2.0) + math.log(0.1))
"""PaCo's target entropy: ALF's default Σ over the 4 action dimensions of (log 2 + log 0.1) ≈ −6.44."""


def mt10_paco() -> TrainConfig:
    """PaCo on MT10 (Sun et al., NeurIPS 2022) as its authors' ALF code ran it: K = 5 parameter sets of 400×3,
    horizon 150, 1,500 steps per task of the initial policy, target entropy ≈ −6.44, 5M steps per task."""
    return TrainConfig(
        preset="mt10-paco",
        env=EnvConfig(name="MT10", max_episode_steps=150),
        agent=paco_sac.Config(target_entropy=PACO_LOG_ALPHA_TARGET),
        loop=dataclasses.replace(
            PAPER_LOOP, steps_per_task=5_000_000, warmup_steps_per_task=1_500, warmup_actions="policy"
        ),
    )


SOFTMOD_LOOP = dataclasses.replace(
    PAPER_LOOP,
    steps_per_task=1_500_000,
    warmup_steps_per_task=4_000,
    warmup_actions="policy",
    replay_per_task=100_000,
)
"""Soft Modularization's authors' MT10 config (`modular_2_2_2_256_reweight_rand.json`): 20 pre-training
epochs of 200 steps per task by the initial policy, 7,500 epochs of 200 steps (1.5M per task), replay 1e6
split into 1e5 per task, 128 rows per task."""


def mt10_softmod() -> TrainConfig:
    """Soft Modularization on MT10 (Yang et al., NeurIPS 2020) as its authors ran it: 2 layers × 2 modules of
    256, horizon 150, alpha lr 3e-4, log-std in [−20, 2]."""
    return TrainConfig(
        preset="mt10-softmod",
        env=EnvConfig(name="MT10", max_episode_steps=150),
        agent=softmod_sac.Config(alpha_lr=3e-4, log_std_min=-20.0),
        loop=SOFTMOD_LOOP,
    )


def mt50_softmod() -> TrainConfig:
    """Soft Modularization on MT50: 4 layers × 4 modules of 128, 1M steps per task, replay 2e5 per task."""
    return TrainConfig(
        preset="mt50-softmod",
        env=EnvConfig(name="MT50", max_episode_steps=150),
        agent=softmod_sac.Config(
            num_layers=4, num_modules=4, module_size=128, alpha_lr=3e-4, log_std_min=-20.0
        ),
        loop=dataclasses.replace(SOFTMOD_LOOP, steps_per_task=1_000_000, replay_per_task=200_000),
    )


def mt10_hyper() -> TrainConfig:
    """Task-conditioned hypernetwork SAC on MT10: 256×2 main networks generated per task (our defaults, on
    MOORE's horizon and schedule: no published Meta-World recipe exists)."""
    return TrainConfig(
        preset="mt10-hyper",
        env=EnvConfig(name="MT10", max_episode_steps=MOORE_HORIZON),
        agent=hyper_sac.Config(),
        loop=PAPER_LOOP,
    )


ON_POLICY_LOOP = LoopConfig(
    steps_per_task=2_000_000,
    eval_every_steps_per_task=50_000,
    eval_envs_per_task=10,
    eval_goals_per_task=10,
    log_every_steps_per_task=5_000,
)
"""The MT-PPO recipes' budget and schedule: the SAC recipes' 2M steps per task (garage's MT-PPO example uses
1,024-step batches and the paper gives no total; the budget is ours), periodic evaluations on 10 goals per
task, the final one on all 50."""


MTPPO_LOOP = dataclasses.replace(ON_POLICY_LOOP, steps_per_task=10_000_000)
"""The Meta-World paper's MT-PPO budget (garage merge-mw-v2-examples `mtppo_metaworld_mt10.py`): 10,000 epochs
of 10,000 steps on MT10, 1e7 steps per task (MT50: 10,000 epochs of 50,000 steps, the same per task)."""


def mt10_mtppo() -> TrainConfig:
    """MT-PPO on MT10 as the Meta-World paper ran it (garage merge-mw-v2-examples `mtppo_metaworld_mt10.py`):
    256×256 tanh policy, std in [0.5, 1.5], max-entropy reward 5e-3, lr 5e-4, 16 epochs, 256×256 Gaussian MLP
    baseline, no advantage centring (`mt_ppo.Config` defaults)."""
    return TrainConfig(
        preset="mt10-mtppo", env=EnvConfig(name="MT10"), agent=mt_ppo.Config(), loop=MTPPO_LOOP
    )


def mt50_mtppo() -> TrainConfig:
    """MT-PPO on MT50 as the Meta-World paper ran it: 512×512 policy and baseline, otherwise as MT10."""
    return TrainConfig(
        preset="mt50-mtppo",
        env=EnvConfig(name="MT50"),
        agent=mt_ppo.Config(policy_hidden_sizes=(512, 512), value_hidden_sizes=(512, 512)),
        loop=MTPPO_LOOP,
    )


def mt10_mtppo_garage() -> TrainConfig:
    """MT-PPO on MT10 by garage's newer example (master `examples/torch/mtppo_metaworld_mt10.py`): 64×64
    policy, Adam-fitted 32×32 value function, centred advantages, goals fixed for the run."""
    return TrainConfig(
        preset="mt10-mtppo-garage",
        env=EnvConfig(name="MT10"),
        agent=mt_ppo.garage_example_config(),
        loop=ON_POLICY_LOOP,
    )


META_LOOP = LoopConfig(
    steps_per_task=10_000_000,
    eval_every_steps_per_task=1_000_000,
    eval_envs_per_task=10,
    eval_goals_per_task=10,
    log_every_steps_per_task=50_000,
    checkpoint_every_steps_per_task=500_000,
    meta_adaptation_episodes=10,
    meta_scored_episodes=3,
)
"""The meta-RL recipes' budget and schedule. Evaluation is the Meta-World protocol (10 adaptation episodes,
3 scored, per held-out goal): periodically on 10 goals per test task (and per train task for meta-train),
at the end on all 50 test goals. The 10M steps per task are ours: the Meta-World paper plots success
against samples without fixing one budget per method."""


MAML_LOOP = dataclasses.replace(META_LOOP, steps_per_task=40_000_000)
"""garage's MAML-TRPO budget on Meta-World: 2,000 epochs of 20 tasks × 2 phases × 10 episodes (4e7 steps per
task on ML10)."""


def ml10_maml() -> TrainConfig:
    """MAML-TRPO on ML10 as the Meta-World paper ran it (garage merge-mw-v2-examples
    `maml_trpo_metaworld_ml10.py`): meta-batch 20 (2 envs per train task), 10 episodes per task and phase,
    128×128 tanh policy with std in [0.5, 1.5], inner lr 1e-4 on raw advantages (`maml.Config` defaults)."""
    return TrainConfig(
        preset="ml10-maml",
        env=EnvConfig(name="ML10", envs_per_task=2),
        agent=maml.Config(),
        loop=MAML_LOOP,
    )


def ml45_maml() -> TrainConfig:
    """MAML-TRPO on ML45 as the Meta-World paper ran it: meta-batch 45, 20 episodes per task and phase, 20
    adaptation episodes at meta-test (`maml_trpo_metaworld_ml45.py`)."""
    return TrainConfig(
        preset="ml45-maml",
        env=EnvConfig(name="ML45", envs_per_task=1),
        agent=maml.Config(episodes_per_task=20),
        loop=dataclasses.replace(MAML_LOOP, meta_adaptation_episodes=20),
    )


def ml10_maml_paper() -> TrainConfig:
    """MAML-TRPO on ML10 with the MAML paper's recipe (cbfinn/maml_rl): 100×100 ReLU policy, state-independent
    std, inner lr 0.1 on standardised advantages, 20 episodes per task, meta-batch 40."""
    return TrainConfig(
        preset="ml10-maml-paper",
        env=EnvConfig(name="ML10", envs_per_task=4),
        agent=maml.maml_paper_config(),
        loop=META_LOOP,
    )


def ml10_rl2() -> TrainConfig:
    """RL²-PPO on ML10 (garage rl2_ppo_metaworld_ml10): GRU 256, meta-batch 10, rewards normalised as
    garage's; trials of 11 episodes (garage 10), so that meta-test's scored episode, after 10 exploration
    episodes, stays within the trial length the GRU was trained on (`rl2.Config.episodes_per_trial`)."""
    return TrainConfig(
        preset="ml10-rl2", env=EnvConfig(name="ML10", envs_per_task=1), agent=rl2.Config(), loop=META_LOOP
    )


def ml45_rl2() -> TrainConfig:
    """RL²-PPO on ML45: meta-batch 45 (one env per train task), otherwise as ML10."""
    return TrainConfig(
        preset="ml45-rl2", env=EnvConfig(name="ML45", envs_per_task=1), agent=rl2.Config(), loop=META_LOOP
    )


def ml10_pearl() -> TrainConfig:
    """PEARL on ML10 (garage pearl_metaworld_ml10): latent 7, 300×3 SAC, 200×3 encoder, one env per task."""
    return TrainConfig(
        preset="ml10-pearl", env=EnvConfig(name="ML10", envs_per_task=1), agent=pearl.Config(), loop=META_LOOP
    )


def ml45_pearl() -> TrainConfig:
    """PEARL on ML45: one env per train task, otherwise as ML10 (replay ~3.8 GB at 5,000 per goal)."""
    return TrainConfig(
        preset="ml45-pearl", env=EnvConfig(name="ML45", envs_per_task=1), agent=pearl.Config(), loop=META_LOOP
    )


MINIGRID_LOOP = LoopConfig(
    steps_per_task=200_000,
    eval_every_steps_per_task=2_000,
    eval_envs_per_task=16,
    eval_goals_per_task=16,
    moore_eval_episodes=16,
    eval_before_training=True,
    log_every_steps_per_task=2_000,
    checkpoint_every_steps_per_task=20_000,
)
"""The MOORE authors' MiniGrid schedule (run/minigrid/multi_task/*.sh): 100 epochs of 2,000 steps per task,
one PPO fit per epoch, an evaluation before training and after every epoch of 16 episodes per task with
sampled actions (their
metric: the mean undiscounted return, `eval_moore/return`; mtrl's greedy evaluation beside it)."""

MINIGRID_EXPERTS = {"MT3": 2, "MT5": 3, "MT7": 4}
"""Experts per task set in the paper's MiniGrid runs (the scripts' N_EXPERTS argument)."""

MINIGRID_TORSOS = {"moore": "moore", "moe": "moe", "mtppo": "shared"}
"""Preset method name → `moore_ppo.Config.torso`."""


def minigrid(task_set: str, method: str) -> TrainConfig:
    """`method` ("moore", "moe" or "mtppo") on MiniGrid `task_set` ("MT3", "MT5", "MT7") as the MOORE authors
    ran it: `moore_ppo.Config` defaults (their PPO and multi-head networks), their expert count, their
    schedule. MT-PPO is their `MiniGridPPOMHNetwork` (one CNN, multi-head), for which no run script was
    released."""
    if task_set not in MINIGRID_EXPERTS:
        raise ValueError(f"unknown MiniGrid task set {task_set!r}; valid: {', '.join(MINIGRID_EXPERTS)}")
    if method not in MINIGRID_TORSOS:
        raise ValueError(f"unknown MiniGrid method {method!r}; valid: {', '.join(MINIGRID_TORSOS)}")
    return TrainConfig(
        preset=f"minigrid-{task_set.lower()}-{method}",
        env=EnvConfig(name=f"MiniGrid-{task_set}", backend="jax"),
        agent=moore_ppo.Config(torso=MINIGRID_TORSOS[method], num_experts=MINIGRID_EXPERTS[task_set]),
        loop=MINIGRID_LOOP,
    )


MINIGRID_TRANSFER = {"TL3-5": ("MT3", 2), "TL5-7": ("MT5", 3)}
"""Transfer setting → (source task set, experts) of the authors' run/minigrid/transfer/*.sh."""


def minigrid_transfer(setting: str, method: str, from_source: bool = True) -> TrainConfig:
    """`method` ("moore" or "moe") on the tasks that `setting` adds (TL3-5: DoorKey-6x6 and DistShift1;
    TL5-7: SimpleCrossingS9N2 and MultiRoom-N2-S4), as the MOORE authors ran transfer: the expert CNNs of a
    finished source run (`minigrid-mt3-<method>` for TL3-5, `-mt5-` for TL5-7), given with
    `--agent.experts-from RUN_DIR`, frozen; fresh task weights and heads. `from_source=False` is their
    "noinit" control: the same networks trained from scratch, everything trainable."""
    if setting not in MINIGRID_TRANSFER:
        raise ValueError(f"unknown MiniGrid transfer {setting!r}; valid: {', '.join(MINIGRID_TRANSFER)}")
    if method not in ("moore", "moe"):
        raise ValueError(f"unknown MiniGrid transfer method {method!r}; valid: moore, moe")
    suffix = "" if from_source else "-noinit"
    return TrainConfig(
        preset=f"minigrid-{setting.lower()}-{method}{suffix}",
        env=EnvConfig(name=f"MiniGrid-{setting}", backend="jax"),
        agent=moore_ppo.Config(
            torso=method, num_experts=MINIGRID_TRANSFER[setting][1], frozen_experts=from_source
        ),
        loop=MINIGRID_LOOP,
    )


PRESETS: dict[str, Callable[[], TrainConfig]] = {
    "quickstart": quickstart,
    "mt10-moore": mt10_moore,
    "mt50-moore": mt50_moore,
    "mt10-mtsac": mt10_mtsac,
    "mt10-mhsac": mt10_mhsac,
    "mt10-care": mt10_care,
    "mt10-paco": mt10_paco,
    "mt10-softmod": mt10_softmod,
    "mt50-softmod": mt50_softmod,
    "mt10-hyper": mt10_hyper,
    "mt10-mtppo": mt10_mtppo,
    "mt50-mtppo": mt50_mtppo,
    "mt10-mtppo-garage": mt10_mtppo_garage,
    "ml10-maml": ml10_maml,
    "ml45-maml": ml45_maml,
    "ml10-maml-paper": ml10_maml_paper,
    "ml10-rl2": ml10_rl2,
    "ml45-rl2": ml45_rl2,
    "ml10-pearl": ml10_pearl,
    "ml45-pearl": ml45_pearl,
    **{
        f"minigrid-{task_set.lower()}-{method}": functools.partial(minigrid, task_set, method)
        for task_set in MINIGRID_EXPERTS
        for method in MINIGRID_TORSOS
    },
    **{
        f"minigrid-{setting.lower()}-{method}{suffix}": functools.partial(
            minigrid_transfer, setting, method, not suffix
        )
        for setting in MINIGRID_TRANSFER
        for method in ("moore", "moe")
        for suffix in ("", "-noinit")
    },
}


def get_preset(name: str) -> TrainConfig:
    """The preset `name`, or a one-line error listing the valid ones."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; valid presets: {', '.join(PRESETS)}")
    return PRESETS[name]()

"""Published Meta-World success rates that mtrl's recipes target, with each source's protocol.

Taken from the papers and re-runs named in `SOURCES`; success is the fraction of
evaluation episodes in which Meta-World's success flag was set at any step, as a number in [0, 1].
`statistic` says what the source reports: "final" success at the end of training, or "best", the maximum
over training (the Meta-World paper's "average maximum success"); ours is compared on the same footing.
"""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class Source:
    name: str
    statistic: str
    protocol: str
    horizon: str
    """Episode length of the source's runs, as its code sets it."""
    evaluation: str
    """How the source evaluates: episodes per task, goals, actions."""

    def footnote(self) -> str:
        return f"{self.protocol} Horizon: {self.horizon}. Evaluation: {self.evaluation}."


@dataclasses.dataclass(frozen=True)
class Result:
    source: str
    method: str
    benchmark: str
    success: float
    spread: float | None = None
    """The ± the source prints (its own convention), if any."""
    approximate: bool = False
    """Quoted second-hand and not checked against the paper."""


SOURCES: dict[str, Source] = {
    "MOORE paper": Source(
        "MOORE paper",
        "final",
        "Hendawy et al., ICLR 2024 (arXiv:2311.11385): goals resampled at every reset, horizon 150 in their "
        "code, 2M steps per task, 10 seeds; the commonly cited figures, not verified against the paper (≈).",
        "150 steps (run/metaworld/*.sh --horizon 150)",
        "10 episodes per task on goals drawn at random, actions sampled from the policy, success at any step "
        "(mtrl's eval_moore/… metrics follow it)",
    ),
    "JAX re-run": Source(
        "JAX re-run",
        "final",
        "independent JAX re-run (rainx0r/mtrl, 'multi-task RL enables parameter scaling'): final success, "
        "10 seeds on MT10, 5 on MT50, Meta-World v3-style setup; ± as printed there.",
        "500 steps (metaworld v3's own)",
        "every goal of every task once, deterministic actions, success at any step (as mtrl's all-goals)",
    ),
    "CARE paper": Source(
        "CARE paper",
        "final",
        "Sodhani et al., ICML 2021 (arXiv:2102.06177), facebookresearch/mtrl: one fixed goal per task, mean "
        "over 10 runs, 2M steps per task; ± as printed there.",
        "150 steps (mtrl/experiment/metaworld.py)",
        "1 episode per task on its one fixed training goal, deterministic actions, success at any step",
    ),
    "Meta-World paper": Source(
        "Meta-World paper",
        "best",
        "Yu et al., CoRL 2019 (arXiv:1910.10897), Table 1: average maximum success over training (compared "
        "with our best evaluation), 10 seeds, garage implementations.",
        "the max_path_length of the metaworld of the time (150–200 steps on its v1 tasks; 500 from v2 on)",
        "garage's: a few deterministic episodes per task on fixed goals (MT-SAC: 5), success at any step",
    ),
}

RESULTS: tuple[Result, ...] = (
    Result("MOORE paper", "MOORE", "MT10", 0.887, approximate=True),
    Result("MOORE paper", "MOORE", "MT50", 0.729, approximate=True),
    Result("JAX re-run", "MOORE", "MT10", 0.834, 0.075),
    Result("JAX re-run", "MOORE", "MT50", 0.648, 0.009),
    Result("JAX re-run", "Soft Modularization", "MT10", 0.822),
    Result("JAX re-run", "Soft Modularization", "MT50", 0.566),
    Result("JAX re-run", "MT-MH-SAC", "MT10", 0.773),
    Result("JAX re-run", "MT-MH-SAC", "MT50", 0.434),
    Result("JAX re-run", "PaCo", "MT10", 0.723),
    Result("JAX re-run", "PaCo", "MT50", 0.601),
    Result("JAX re-run", "MT-MH-SAC widened", "MT10", 0.928),
    Result("JAX re-run", "MT-MH-SAC widened", "MT50", 0.812),
    Result("CARE paper", "MT-SAC", "MT10", 0.49, 0.073),
    Result("CARE paper", "MT-SAC", "MT50", 0.36, 0.013),
    Result("CARE paper", "MT-SAC + task encoder", "MT10", 0.54),
    Result("CARE paper", "MT-SAC + task encoder", "MT50", 0.40),
    Result("CARE paper", "MT-MH-SAC", "MT10", 0.61),
    Result("CARE paper", "MT-MH-SAC", "MT50", 0.45),
    Result("CARE paper", "PCGrad", "MT10", 0.72),
    Result("CARE paper", "PCGrad", "MT50", 0.50),
    Result("CARE paper", "Soft Modularization", "MT10", 0.73),
    Result("CARE paper", "Soft Modularization", "MT50", 0.50),
    Result("CARE paper", "CARE", "MT10", 0.84, 0.051),
    Result("CARE paper", "CARE", "MT50", 0.54, 0.031),
    Result("CARE paper", "one SAC per task", "MT10", 0.90),
    Result("CARE paper", "one SAC per task", "MT50", 0.74),
    Result("Meta-World paper", "MT-PPO", "MT10", 0.305),
    Result("Meta-World paper", "MT-PPO", "MT50", 0.354),
    Result("Meta-World paper", "MT-TRPO", "MT10", 0.313),
    Result("Meta-World paper", "MT-TRPO", "MT50", 0.210),
    Result("Meta-World paper", "Task embeddings", "MT10", 0.209),
    Result("Meta-World paper", "Task embeddings", "MT50", 0.118),
    Result("Meta-World paper", "MT-SAC", "MT10", 0.683),
    Result("Meta-World paper", "MT-SAC", "MT50", 0.385),
    Result("Meta-World paper", "MAML", "ML10 meta-train", 0.444),
    Result("Meta-World paper", "MAML", "ML10 meta-test", 0.316),
    Result("Meta-World paper", "MAML", "ML45 meta-train", 0.407),
    Result("Meta-World paper", "MAML", "ML45 meta-test", 0.399),
    Result("Meta-World paper", "RL²", "ML10 meta-train", 0.869),
    Result("Meta-World paper", "RL²", "ML10 meta-test", 0.358),
    Result("Meta-World paper", "RL²", "ML45 meta-train", 0.70),
    Result("Meta-World paper", "RL²", "ML45 meta-test", 0.333),
    Result("Meta-World paper", "PEARL", "ML10 meta-train", 0.232),
    Result("Meta-World paper", "PEARL", "ML10 meta-test", 0.130),
    Result("Meta-World paper", "PEARL", "ML45 meta-train", 0.145),
    Result("Meta-World paper", "PEARL", "ML45 meta-test", 0.22),
)

AGENT_METHODS: dict[str, str] = {
    "mt_sac": "MT-SAC",
    "mh_sac": "MT-MH-SAC",
    "moore_sac": "MOORE",
    "care_sac": "CARE",
    "paco_sac": "PaCo",
    "softmod_sac": "Soft Modularization",
    "mt_ppo": "MT-PPO",
    "maml": "MAML",
    "rl2": "RL²",
    "pearl": "PEARL",
}
WIDENED_MH_SAC = {"MT10": 4096, "MT50": 2048}  # the re-run's widened MT-MH-SAC hidden width per benchmark


def method_of(config: dict[str, Any]) -> str | None:
    """The published method a run's flattened config reproduces, or None when no source ran it.

    A gradient method other than the mean changes the method: MT-SAC with PCGrad is CARE's "PCGrad" row;
    MT-MH-SAC at the re-run's widened hidden width is its "widened" row.
    """
    agent = config.get("agent_name")
    method = AGENT_METHODS.get(agent)
    gradient = config.get("agent.gradient_method", "mean")
    if gradient != "mean":
        return "PCGrad" if (agent, gradient) == ("mt_sac", "pcgrad") else None
    widths = config.get("agent.hidden_sizes") or ()
    if agent == "mh_sac" and widths and max(widths) == WIDENED_MH_SAC.get(config.get("env.name")):
        return "MT-MH-SAC widened"
    return method


def published_for(method: str, benchmark: str) -> list[Result]:
    """Every published result of `method` on `benchmark`, in source order."""
    return [r for r in RESULTS if r.method == method and r.benchmark == benchmark]

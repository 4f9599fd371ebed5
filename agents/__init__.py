"""Agents by name: each value is a module with `Config`, `init` and `act`, and either `update` (off-policy,
trained from replay by `mtrl.training`) or `train_iteration` (collects its own episodes:
`mtrl.episodic_training`); meta-RL agents add `init_adaptation` and `adapt` (`mtrl.meta_evaluation`).

`from mtrl.agents import moore_sac` gives pure functions over plain pytrees; the training loop and
the CLI look agents up here and know nothing else about them.
"""

from types import ModuleType

from . import (
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

AGENTS: dict[str, ModuleType] = {
    "mt_sac": mt_sac,
    "mh_sac": mh_sac,
    "moore_sac": moore_sac,
    "care_sac": care_sac,
    "paco_sac": paco_sac,
    "softmod_sac": softmod_sac,
    "hyper_sac": hyper_sac,
    "mt_ppo": mt_ppo,
    "moore_ppo": moore_ppo,
    "maml": maml,
    "rl2": rl2,
    "pearl": pearl,
}


def get_agent(name: str) -> ModuleType:
    """The agent module called `name`, or a one-line error listing the valid names."""
    if name not in AGENTS:
        raise ValueError(f"unknown agent {name!r}; valid agents: {', '.join(AGENTS)}")
    return AGENTS[name]

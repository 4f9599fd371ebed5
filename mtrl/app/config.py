"""The typed config of one training run, as the CLI and scripts build it, and its JSON round trip."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Generic, TypeVar

from mtrl import envs
from mtrl.agents import AGENTS, get_agent
from mtrl.logger import WandbConfig
from mtrl.training import LoopConfig

AgentConfig = TypeVar("AgentConfig")


@dataclasses.dataclass(frozen=True, kw_only=True)
class EnvConfig:
    """Which benchmark to train on and how it is batched."""

    name: str = "MT10"
    """toy, MT1, MT10, MT25, MT50 for multi-task agents; toy-ml, ML1, ML10, ML25, ML45 for meta-RL agents
    (trained on the train split, evaluated on held-out test tasks/goals)."""
    task: str | None = None
    """Meta-World task for MT1/ML1, e.g. reach-v3."""
    backend: str | None = None
    """Env backend; default: the benchmark's own (native for Meta-World, jax for toy and MiniGrid). A run's
    config.json records the backend it used."""
    envs_per_task: int = 1
    """Parallel training envs per task."""
    reward_version: str = "v2"
    """Meta-World reward function version: v2 (default), or v1 on the official backend."""
    toy_num_tasks: int = 4
    """Tasks of the toy point-mass env."""
    max_episode_steps: int | None = None
    """Episode horizon for training and evaluation (truncation; success counts at any step within it). None:
    the benchmark's own (Meta-World 500, the Meta-World paper's; MOORE and CARE presets set 150, their
    authors' value; at most 500 on Meta-World)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainConfig(Generic[AgentConfig]):
    """One training run: env, agent, loop budget, logging. Every field is a CLI flag."""

    agent: AgentConfig
    """The agent's own config; its type picks the agent (see `mtrl.agents.AGENTS`)."""
    env: EnvConfig = EnvConfig()
    loop: LoopConfig = LoopConfig()
    wandb: WandbConfig = WandbConfig()
    seed: int = 0
    """Seed of the first run; with num_seeds N, runs use seed, seed+1, ... in one vmapped program."""
    num_seeds: int = 1
    """Seeds trained together by vmap (pure-JAX envs only)."""
    preset: str = "custom"
    """Preset to start from (see `mtrl.app.presets.PRESETS`), e.g. quickstart, mt10-moore, mt10-care."""
    run_dir: Path | None = None
    """Run directory; default runs/<preset>-<agent>-s<seed>-<time>. An existing one is never overwritten."""

    @property
    def agent_name(self) -> str:
        return agent_name_of(self.agent)


def agent_name_of(agent_config: Any) -> str:
    """The AGENTS key whose Config class `agent_config` is."""
    for name, module in AGENTS.items():
        if type(agent_config) is module.Config:
            return name
    raise ValueError(f"{type(agent_config).__name__} is not the Config of any of {', '.join(AGENTS)}")


def to_json(config: TrainConfig) -> dict[str, Any]:
    """A plain dict of the resolved config, with the agent's name beside its fields."""
    data = dataclasses.asdict(config)
    for name in get_agent(config.agent_name).TRAITS.wired_fields:  # data computed per run, not settings
        data["agent"].pop(name)
    data["agent_name"] = config.agent_name
    data["run_dir"] = str(config.run_dir) if config.run_dir else None
    return data


def dotted_fields(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config dict (as `to_json` gives) flattened to dotted names: {"agent.actor_lr": ...}."""
    flat = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(dotted_fields(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


SAC_FIELDS_ADDED_2026_12 = {
    "one_hot_input": True,
    "authors_init": False,
    "actor_first": False,
    "temperature_loss": "alpha",
}
"""SAC-family fields added when the agents were made faithful to their references, with the behaviour of the
runs written before them: such a run's config.json lacks the field, and resuming or evaluating it must go on
exactly as it was trained (same network shapes, same update)."""


METAWORLD_DEFAULT_BACKEND_BEFORE_2026_12_05 = "official"
"""The backend a Meta-World run got when config.json recorded none (runs written before the default became
native): resuming or evaluating such a run goes on on the backend it was trained on."""


def from_json(data: dict[str, Any]) -> TrainConfig:
    """Rebuild a `TrainConfig` written by `to_json` (e.g. a run's config.json)."""
    agent_class = get_agent(data["agent_name"]).Config
    names = {field.name for field in dataclasses.fields(agent_class)}
    earlier = {k: v for k, v in SAC_FIELDS_ADDED_2026_12.items() if k in names and k not in data["agent"]}
    agent_config = _build(agent_class, {**earlier, **data["agent"]})
    return TrainConfig(
        agent=agent_config,
        env=_build(EnvConfig, _with_backend_recorded(data["env"])),
        loop=_build(LoopConfig, data["loop"]),
        wandb=_build(WandbConfig, data["wandb"]),
        seed=data["seed"],
        num_seeds=data["num_seeds"],
        preset=data["preset"],
        run_dir=Path(data["run_dir"]) if data.get("run_dir") else None,
    )


def _with_backend_recorded(env: dict[str, Any]) -> dict[str, Any]:
    if env.get("backend") is None and env.get("name", "MT10") in envs.METAWORLD_BENCHMARKS:
        return {**env, "backend": METAWORLD_DEFAULT_BACKEND_BEFORE_2026_12_05}
    return env


def load_run_config(run_dir: Path) -> TrainConfig:
    """The config of the run in `run_dir`, with `run_dir` where it is now (run directories may be moved)."""
    path = Path(run_dir) / "config.json"
    if not path.exists():
        raise FileNotFoundError(f"{run_dir} is not an mtrl run directory (no config.json)")
    return dataclasses.replace(from_json(json.loads(path.read_text())), run_dir=Path(run_dir))


def _build(cls: type, values: dict[str, Any]) -> Any:
    """Instantiate a flat config dataclass from JSON values (lists come back as tuples)."""
    names = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(
            f"{cls.__name__} has no field {unknown[0]!r}; its fields: {', '.join(sorted(names))}"
        )
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})

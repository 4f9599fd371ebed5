"""The shared vocabulary of mtrl: env spec, time steps, transitions, and the env/agent signatures.

Everything here is either a static description (`EnvSpec`, hashable, never traced) or a pytree of arrays
with a leading batch axis (`TimeStep`, `Transition`). Envs and agents only meet through these types.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, Literal, NamedTuple, Protocol

import jax
import numpy as np
from flax import struct
from jaxtyping import Array, Bool, Float, Int

PyTree = Any


@dataclasses.dataclass(frozen=True, kw_only=True)
class EnvSpec:
    """Static facts about a batched env; agents and the training loop derive every size from it.

    Envs are ordered task-major: env `i` runs task `i // envs_per_task`.
    """

    name: str
    obs_size: int
    action_size: int
    task_names: tuple[str, ...]
    envs_per_task: int
    episode_length: int
    goals_per_task: int
    action_low: float = -1.0
    action_high: float = 1.0
    task_id_columns: int = 0
    """Trailing observation columns that hold the one-hot task id (MT benchmarks, toy: the task count; 0 where
    the observation carries none). Declared here so that torsos which take the task only through their own
    routing (MOORE's task weights, CARE's context, ...) can read the state without it."""
    discrete_actions: bool = False
    """Actions are integers `[envs]` in `0..action_size-1` (MiniGrid), not floats `[envs, action_size]`."""
    procedural: bool = False
    """Every reset draws a new layout (MiniGrid): there is no fixed set of goals to cover, so evaluations
    play as many episodes per task as asked (`goals_per_task` is 1 and means nothing more)."""

    @property
    def state_size(self) -> int:
        """Observation columns before the one-hot task id."""
        return self.obs_size - self.task_id_columns

    @property
    def num_tasks(self) -> int:
        return len(self.task_names)

    @property
    def num_envs(self) -> int:
        return self.num_tasks * self.envs_per_task

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EnvSpec:
        return cls(**{**data, "task_names": tuple(data["task_names"])})


@struct.dataclass
class TimeStep:
    """What one vector step returns, for every env in the batch.

    Auto-reset is same-step: when a step ends an episode (`terminated | truncated`), `obs` is already the
    first observation of the next episode, while `reward`, `success`, `terminated`, `truncated` and
    `final_obs` describe the transition that just finished. Where no episode ended, `final_obs == obs`.
    Store `(previous obs, action, reward, final_obs, terminated)` in replay.
    """

    obs: Float[Array, "envs obs"]
    reward: Float[Array, " envs"]
    terminated: Bool[Array, " envs"]
    truncated: Bool[Array, " envs"]
    success: Bool[Array, " envs"]
    task_id: Int[Array, " envs"]
    final_obs: Float[Array, "envs obs"]
    unstable: Bool[Array, " envs"]
    """The simulator went unstable during this step and reset itself (Meta-World; False in JAX envs)."""


@struct.dataclass
class Transition:
    """A batch of transitions; `task_id` travels with every row so agents route per task explicitly."""

    obs: Float[Array, "batch obs"]
    action: Float[Array, "batch act"]
    reward: Float[Array, " batch"]
    next_obs: Float[Array, "batch obs"]
    terminated: Float[Array, " batch"]
    task_id: Int[Array, " batch"]


class GoalSchedule(NamedTuple):
    """Which goal each env plays at each reset (`envs.goals`)."""

    sampling: Literal["random", "sequential"]
    """"random": a uniform goal at every draw (training); "sequential": env j plays goals j, j+E, j+2E, ...
    (evaluation covers every goal once)."""
    episodes_per_goal: int
    """Consecutive episodes on one goal before the next draw (meta-RL: adaptation + scored episodes)."""


class Env(Protocol):
    """A functional batched env; `reset` and `step` are traceable by `jax.jit` and `lax.scan`.

    Every env declares what the loops would otherwise have to guess: whether whole runs can be vmapped over
    seeds, its goal schedule, and what it keeps outside the JAX state (host-side simulators) for checkpoints.
    """

    spec: EnvSpec
    vmappable: bool
    """A training run can be `jax.vmap`-ed over seeds: pure-JAX envs (toy, MiniGrid port) over any number,
    the native Meta-World backend over the number it was built for (`envs.make(..., seeds=N)`). Other envs
    that call the host (`io_callback`) cannot: their seeds play one after another."""
    steps_on_host: bool
    """Part of each step runs on the host (`io_callback`): the env's programs stay on one device, so vmapped
    seeds are not split across devices."""
    schedule: GoalSchedule

    def reset(self, key: jax.Array) -> tuple[PyTree, TimeStep]: ...

    def step(self, state: PyTree, action: Float[Array, "envs act"]) -> tuple[PyTree, TimeStep]: ...

    def host_state(self) -> dict | None:
        """What the env keeps outside its JAX state, to store in a checkpoint; None when nothing is."""
        ...

    def restore_host_state(self, state: PyTree, saved: dict) -> None:
        """Put the host side back as `host_state` gave `saved` while `state` was current."""
        ...

    render_fps: int | None
    """Env steps per second of simulated time, the pace videos play at; None: the env has no renderer."""

    def render(self, state: PyTree, envs: Sequence[int], **options) -> Sequence[np.ndarray]:
        """uint8 `[height, width, 3]` images of the envs `envs` (batch indices) as they are in `state`, the
        latest state (envs whose `render_fps` is not None; options such as Meta-World's `camera`)."""
        ...

    def close(self) -> None:
        """Release what the env holds outside JAX (host envs, worker threads, GL contexts)."""
        ...


@dataclasses.dataclass(frozen=True, kw_only=True)
class AgentTraits:
    """What an agent module declares about itself (its `TRAITS`); the wiring reads it, never probes."""

    loop: Literal["replay", "episodic"]
    """"replay": `update` learns from a replay buffer (`mtrl.training`); "episodic": `train_iteration` learns
    from episodes it collects itself (`mtrl.episodic_training`)."""
    meta: bool = False
    """Adapts to a new goal or task at test time (`init_adaptation`, `adapt`, `check_meta_protocol`):
    trains on the ML benchmarks and is scored on held-out goals or tasks."""
    discrete_actions: bool = False
    """Chooses among discrete actions (MiniGrid) rather than continuous ones (Meta-World, toy)."""
    expert_transfer: bool = False
    """Its config has `experts_from` and `frozen_experts`: it can start from a source run's experts."""
    wired_fields: tuple[str, ...] = ()
    """Config fields that hold data the wiring computes for the run (the text task embeddings' `task_table`),
    not settings: they are no flags and are not written to config.json."""


class Agent(NamedTuple):
    """An agent's three pure functions, already bound to its config; the loop knows agents only so."""

    name: str
    init: Callable[[jax.Array, EnvSpec], PyTree]
    """(key, spec) -> agent state."""
    act: Callable[..., jax.Array]
    """(state, obs, task_id, key, deterministic: bool) -> action."""
    update: Callable[[PyTree, Transition, jax.Array], tuple[PyTree, dict[str, jax.Array]]]
    """(state, batch, key) -> (state, metrics)."""

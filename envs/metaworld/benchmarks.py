"""Meta-World benchmark definitions: names, task lists, splits and each task's goal configurations.

Every backend builds its envs from this module, so all backends run the same tasks in the same
(task-major) order with the same 50 goal configurations per task. Those come from metaworld's own
benchmark classes (`metaworld.MT10(seed=...)`, ...), whose constructor seed fixes them; the ML
train/test split is metaworld's too. Argument checks live here so that every backend rejects bad
names with the same one-line message.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools

import jax.numpy as jnp
import metaworld
import numpy as np
from metaworld import env_dict
from metaworld.types import Task

from mtrl.types import EnvSpec, GoalSchedule

from ..goals import goals_after_step, next_goal_indices

BENCHMARKS = ("MT1", "MT10", "MT25", "MT50", "ML1", "ML10", "ML25", "ML45")
SINGLE_TASK_BENCHMARKS = ("MT1", "ML1")
SPLITS = ("train", "test")
GOAL_SAMPLING = ("random", "sequential")
TASK_NAMES = tuple(env_dict.ALL_V3_ENVIRONMENTS)

OBS_SIZE = 39  # hand 3 + gripper 1 + objects 14, the previous frame's 18, goal 3
GOAL_COLUMNS = slice(36, 39)  # zeroed by metaworld in ML benchmarks (partially_observable=True)
ACTION_SIZE = 4
EPISODE_LENGTH = 500  # SawyerXYZEnv.max_path_length
GOALS_PER_TASK = 50  # metaworld._N_GOALS

# metaworld's own splits, kept as they are. ML25's test split contains basketball-v3, which is also one of its
# training tasks (metaworld 3.1.1, env_dict.ML25_V3): on ML25, "held-out tasks" holds for all test tasks but
# that one. ML10's and ML45's test tasks are all held out (tests/test_env_contract.py checks both facts).
_MULTI_TASK_TABLES = {
    "MT10": env_dict.MT10_V3,
    "MT25": env_dict.MT25_V3,
    "MT50": env_dict.MT50_V3,
    "ML10": env_dict.ML10_V3,
    "ML25": env_dict.ML25_V3,
    "ML45": env_dict.ML45_V3,
}


@dataclasses.dataclass(frozen=True)
class BenchmarkTasks:
    """One resolved benchmark split: its tasks in env order, their env classes and goals.

    `goals[t][g]` is metaworld's `Task` for goal configuration `g` of task `t`, ready for
    `env.set_task`. `one_hot` is True for MT benchmarks (one-hot task id appended to obs, goal
    visible) and False for ML benchmarks (goal hidden, no task id in obs).
    """

    name: str
    task_names: tuple[str, ...]
    env_classes: tuple[type, ...]
    goals: tuple[tuple[Task, ...], ...]
    one_hot: bool


def check_args(
    benchmark: str,
    *,
    task: str | None = None,
    split: str = "train",
    goal_sampling: str = "random",
    envs_per_task: int = 1,
) -> None:
    """Raise `ValueError` naming the bad value and the valid choices, before anything is built."""
    if benchmark not in BENCHMARKS:
        raise ValueError(f"unknown Meta-World benchmark {benchmark!r}; valid: {', '.join(BENCHMARKS)}")
    if benchmark in SINGLE_TASK_BENCHMARKS:
        if task not in TASK_NAMES:
            raise ValueError(_unknown_task_message(benchmark, task))
    elif task is not None:
        raise ValueError(
            f"task={task!r} is only for {' and '.join(SINGLE_TASK_BENCHMARKS)}; "
            f"{benchmark} has a fixed task list"
        )
    splits = SPLITS if benchmark.startswith("ML") else ("train",)
    if split not in splits:
        raise ValueError(f"unknown split {split!r} for {benchmark}; valid: {', '.join(splits)}")
    if goal_sampling not in GOAL_SAMPLING:
        raise ValueError(f"unknown goal_sampling {goal_sampling!r}; valid: {', '.join(GOAL_SAMPLING)}")
    if not isinstance(envs_per_task, int) or envs_per_task < 1:
        raise ValueError(f"envs_per_task must be an int >= 1, got {envs_per_task!r}")


def _unknown_task_message(benchmark: str, task: str | None) -> str:
    if task is None:
        head = f"{benchmark} needs task=<Meta-World task name>"
    else:
        close = difflib.get_close_matches(str(task), TASK_NAMES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        head = f"unknown Meta-World task {task!r}{hint}"
    stems = ", ".join(sorted(name.removesuffix("-v3") for name in TASK_NAMES))
    return f"{head}; valid (each with suffix -v3): {stems}"


def benchmark_name(benchmark: str, *, task: str | None = None, split: str = "train") -> str:
    """Name the env spec: "MT10", "MT1/reach-v3", "ML10/test", "ML1/reach-v3/train"."""
    parts = [benchmark] + ([task] if task is not None else [])
    if benchmark.startswith("ML"):
        parts.append(split)
    return "/".join(parts)


def task_names(benchmark: str, *, task: str | None = None, split: str = "train") -> tuple[str, ...]:
    """Return the benchmark's task names in env order, cheaply (no env is built)."""
    check_args(benchmark, task=task, split=split)
    if benchmark in SINGLE_TASK_BENCHMARKS:
        return (task,)
    table = _MULTI_TASK_TABLES[benchmark]
    return tuple(table[split] if benchmark.startswith("ML") else table)


def load_benchmark(
    benchmark: str, *, task: str | None = None, split: str = "train", seed: int = 0
) -> BenchmarkTasks:
    """Build one benchmark split from metaworld's own benchmark class, seeded by `seed`."""
    check_args(benchmark, task=task, split=split)
    source = _metaworld_benchmark(benchmark, task, seed)
    classes = source.test_classes if split == "test" else source.train_classes
    all_goals = source.test_tasks if split == "test" else source.train_tasks
    names = tuple(classes)
    goals = tuple(tuple(g for g in all_goals if g.env_name == name) for name in names)
    assert names == task_names(benchmark, task=task, split=split), names
    assert all(len(g) == GOALS_PER_TASK for g in goals), [len(g) for g in goals]
    return BenchmarkTasks(
        name=benchmark_name(benchmark, task=task, split=split),
        task_names=names,
        env_classes=tuple(classes[name] for name in names),
        goals=goals,
        one_hot=benchmark.startswith("MT"),
    )


@functools.lru_cache(maxsize=4)
def _metaworld_benchmark(benchmark: str, task: str | None, seed: int) -> metaworld.Benchmark:
    """Construct metaworld's benchmark once per (name, task, seed): it takes ~0.8 s per task.

    Caching lets the train and test splits of an ML benchmark (and repeated builds in tests) share
    one instance; its `Task` values are immutable.
    """
    cls = getattr(metaworld, benchmark)
    if benchmark in SINGLE_TASK_BENCHMARKS:
        return cls(task, seed=seed)
    return cls(seed=seed)


def check_max_episode_steps(max_episode_steps: int | None) -> int:
    """The episode horizon: metaworld's 500 by default, any length in 1..500 when given.

    metaworld refuses to step past its own `max_path_length` (500), so a longer horizon cannot exist;
    a shorter one (the MOORE and CARE authors train and evaluate at 150) truncates earlier.
    """
    if max_episode_steps is None:
        return EPISODE_LENGTH
    if not isinstance(max_episode_steps, int) or not 1 <= max_episode_steps <= EPISODE_LENGTH:
        raise ValueError(
            f"max_episode_steps must be an int in 1..{EPISODE_LENGTH} (metaworld's limit), "
            f"got {max_episode_steps!r}"
        )
    return max_episode_steps


def make_spec(tasks: BenchmarkTasks, envs_per_task: int, episode_length: int = EPISODE_LENGTH) -> EnvSpec:
    """Describe the batched env: 39-dim obs, plus the one-hot task id for MT benchmarks."""
    one_hot_size = len(tasks.task_names) if tasks.one_hot else 0
    return EnvSpec(
        name=tasks.name,
        obs_size=OBS_SIZE + one_hot_size,
        action_size=ACTION_SIZE,
        task_names=tasks.task_names,
        envs_per_task=envs_per_task,
        episode_length=episode_length,
        goals_per_task=GOALS_PER_TASK,
        task_id_columns=one_hot_size,
    )


class TaskBookkeeping:
    """What every Meta-World backend does the same way around its host call.

    Task ids (task-major), the one-hot appended to MT observations, and the goal draws at reset, all
    from the spec alone, so two backends with the same seed and key see the same tasks and goals.
    """

    def __init__(self, tasks: BenchmarkTasks, spec: EnvSpec, goal_sampling: str, episodes_per_goal: int = 1):
        self.spec, self.schedule = spec, GoalSchedule(goal_sampling, episodes_per_goal)
        self.task_id = np.repeat(np.arange(spec.num_tasks, dtype=np.int32), spec.envs_per_task)
        self.one_hot = np.eye(spec.num_tasks, dtype=np.float32)[self.task_id] if tasks.one_hot else None

    def next_goals(self, key, episodes):
        """Goal index of each env's episode number `episodes` (`goals.next_goal_indices`)."""
        spec = self.spec
        sampling, per_goal = self.schedule
        return next_goal_indices(sampling, key, episodes, spec.envs_per_task, spec.goals_per_task, per_goal)

    def goals_after_step(self, key, episodes, truncated, goal_index):
        """Goal of each env after a step: redrawn only where a goal block starts (`goals_after_step`)."""
        spec = self.spec
        sampling, per_goal = self.schedule
        return goals_after_step(
            sampling,
            key,
            episodes,
            truncated,
            goal_index,
            spec.envs_per_task,
            spec.goals_per_task,
            per_goal,
        )

    def observe(self, obs):
        """Append the one-hot task id last, as metaworld's OneHotWrapper does (MT only)."""
        if self.one_hot is None:
            return obs
        return jnp.concatenate([obs, self.one_hot], axis=-1)

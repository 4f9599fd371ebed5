"""Run directories as seeds and groups: what `mtrl report` aggregates.

A run directory written by `mtrl train` holds `config.json`, `spec.json` and `metrics.jsonl`; a run with
`num_seeds = N` trained N vmapped seeds and logs `eval/seed<i>/success` for each. Every seed becomes one
`SeedRun`. Per-task success of one seed is known for single-seed runs (`eval/<task>/success`) and for
vmapped runs only where `eval/seed<i>/<task>/success` was logged; otherwise a group's statistics fall back
to each seed's mean over tasks (a one-column score matrix) and say so. Meta-RL runs are read the same way
from their meta-test evaluation (`meta_test/...`: success on held-out tasks after adaptation), and their
benchmark is named as the Meta-World paper does ("ML10 meta-test").

What is read is `<protocol>/.../<metric>`: the metric is `success` or the undiscounted `return` (MiniGrid's
headline number); the protocol is the evaluation that logged it (`PROTOCOLS`), chosen per run from
`DEFAULT_PROTOCOLS` unless given. Runs of the MOORE authors' protocol are named "<benchmark> (eval_moore)" so
that they are never compared with runs of another protocol.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from mtrl.logger import ELAPSED

# Config fields that do not change what a seed learns: the seed itself, how many seeds shared one program
# (vmapped seeds reproduce single-seed runs), where the run lives, the preset label and W&B settings.
IGNORED_FIELDS = ("seed", "num_seeds", "run_dir", "preset", "wandb.")

METRICS = ("success", "return")
PROTOCOLS = {
    "eval": "mtrl's all-goals evaluation (every goal once, or fresh MiniGrid layouts; deterministic actions)",
    "eval_moore": "the MOORE authors' evaluation (random goals or layouts, actions sampled from the policy)",
    "meta_test": "meta-RL: held-out tasks after adaptation",
}
DEFAULT_PROTOCOLS = {"success": ("eval", "meta_test"), "return": ("eval_moore", "eval", "meta_test")}
"""Per metric, the protocols tried in turn for a run when none is given: the first the run logged is read.
Success keeps mtrl's own evaluation; return prefers the MOORE authors', whose mean return is their MiniGrid
metric (`eval_moore/return`)."""


@dataclasses.dataclass(frozen=True, eq=False)
class SeedRun:
    """The evaluations of one seed, in the order they were logged."""

    source: Path
    seed: int
    config: dict[str, Any]
    """The run's flattened config.json (`env.name`, `agent.hidden_sizes`, ...)."""
    task_names: tuple[str, ...]
    steps: np.ndarray
    """`[points]` env steps per task at each evaluation."""
    score: np.ndarray
    """`[points]` this seed's metric averaged over tasks."""
    task_scores: np.ndarray | None
    """`[points, tasks]` this seed's metric per task, None when the run did not log it per seed."""
    dir_task_scores: np.ndarray
    """`[points, tasks]` per-task metric averaged over all seeds of its run directory."""
    protocol: str = "eval"
    """Which evaluation was read, a key of `PROTOCOLS`."""
    metric: str = "success"
    """What was read: "success" or "return"."""
    elapsed: np.ndarray | None = None
    """`[points]` wall-clock seconds of the run at each evaluation; None for runs that did not log it."""

    @property
    def benchmark(self) -> str:
        task = self.config.get("env.task")
        name = self.config["env.name"] + (f" {task}" if task else "")
        suffix = {"eval": "", "eval_moore": " (eval_moore)", "meta_test": " meta-test"}[self.protocol]
        return name + suffix

    @property
    def success(self) -> np.ndarray:
        """`score` of a run read for its success."""
        if self.metric != "success":
            raise AttributeError(f"{self.name} was read for its {self.metric}, not its success")
        return self.score

    @property
    def name(self) -> str:
        return f"{self.source} (seed {self.seed})"


@dataclasses.dataclass(frozen=True, eq=False)
class Group:
    """Seeds of one configuration: the unit that statistics aggregate over."""

    label: str
    key: dict[str, Any]
    runs: tuple[SeedRun, ...]

    @property
    def benchmark(self) -> str:
        return self.runs[0].benchmark

    @property
    def task_names(self) -> tuple[str, ...]:
        return self.runs[0].task_names

    @property
    def metric(self) -> str:
        return self.runs[0].metric

    @property
    def per_task_scores(self) -> bool:
        """Whether every seed logged its per-task metric (else scores are per-seed means over tasks)."""
        return all(r.task_scores is not None for r in self.runs)

    def scores(self, which: str) -> np.ndarray:
        """`[runs, tasks]` scores at each seed's last ("final") or best-mean ("best") evaluation."""
        if which not in ("final", "best"):
            raise ValueError(f"unknown score {which!r}; valid: final, best")
        rows = []
        for run in self.runs:
            point = len(run.steps) - 1 if which == "final" else int(np.argmax(run.score))
            rows.append(run.task_scores[point] if self.per_task_scores else run.score[point : point + 1])
        return np.array(rows)

    def task_means(self) -> np.ndarray:
        """`[tasks]` final metric per task, mean over seeds (exact for vmapped runs too)."""
        return np.mean([run.dir_task_scores[-1] for run in self.runs], axis=0)

    def common_steps(self) -> np.ndarray:
        """Evaluation steps every seed of the group reached: the x-axis of its learning curve."""
        steps = self.runs[0].steps
        for run in self.runs[1:]:
            steps = np.intersect1d(steps, run.steps)
        return steps

    def curve_scores(self, steps: np.ndarray) -> np.ndarray:
        """`[points, runs, tasks]` scores at `steps` (each in every seed's evaluations)."""
        return self._scores_at([np.searchsorted(run.steps, steps) for run in self.runs])

    def common_times(self, points: int = 40) -> np.ndarray:
        """`points` wall-clock times (s) from when every seed had been evaluated once to when the first
        seed's last evaluation came: the x-axis of the group's learning curve against time."""
        for run in self.runs:
            if run.elapsed is None:
                raise ValueError(
                    f"{run.name} logged no {ELAPSED} (written by mtrl before it logged wall-clock time); "
                    "valid --x for it: steps"
                )
        start = max(run.elapsed[0] for run in self.runs)
        end = min(run.elapsed[-1] for run in self.runs)
        return np.linspace(start, end, points) if end > start else np.array([start])

    def time_curve_scores(self, times: np.ndarray) -> np.ndarray:
        """`[points, runs, tasks]`: at each of `times`, each seed's latest evaluation at or before it."""
        return self._scores_at([np.searchsorted(run.elapsed, times, side="right") - 1 for run in self.runs])

    def _scores_at(self, indices: list[np.ndarray]) -> np.ndarray:
        per_run = []
        for run, index in zip(self.runs, indices, strict=True):
            per_run.append(run.task_scores[index] if self.per_task_scores else run.score[index][:, None])
        return np.stack(per_run, axis=1)


def read_run_dir(run_dir: Path, metric: str = "success", protocol: str | None = None) -> list[SeedRun]:
    """Every seed's `metric` under `protocol` (default: `DEFAULT_PROTOCOLS`) in one run directory; a one-line
    ValueError if it is not one, has no evaluation yet or did not log that metric."""
    check_choice("--metric", metric, METRICS)
    if protocol is not None:
        check_choice("--protocol", protocol, PROTOCOLS)
    run_dir = Path(run_dir)
    config_path = run_dir / "config.json"
    if not run_dir.is_dir() or not config_path.exists():
        raise ValueError(f"{run_dir} is not an mtrl run directory (no config.json)")
    config = flatten(json.loads(config_path.read_text()))
    for field in ("agent_name", "env.name", "seed", "num_seeds"):
        if field not in config:
            raise ValueError(
                f"{config_path} lacks the field {field!r}; is it a config written by mtrl train?"
            )
    evals, protocol = _eval_records(run_dir, metric, protocol)
    task_names = _task_names(run_dir, evals[-1], protocol, metric)
    steps = np.array([r["env/steps_per_task"] for r in evals], np.float64)
    if np.any(np.diff(steps) <= 0):
        raise ValueError(f"{run_dir / 'metrics.jsonl'}: evaluation steps are not increasing")
    dir_tasks = _columns(evals, [f"{protocol}/{t}/{metric}" for t in task_names], run_dir)
    num_seeds = int(config["num_seeds"])
    if num_seeds == 1:
        seeds = [(_columns(evals, [f"{protocol}/{metric}"], run_dir)[:, 0], dir_tasks)]
    else:
        seeds = []
        for i in range(num_seeds):
            mean = _columns(evals, [f"{protocol}/seed{i}/{metric}"], run_dir)[:, 0]
            keys = [f"{protocol}/seed{i}/{t}/{metric}" for t in task_names]
            tasks = _columns(evals, keys, run_dir) if all(k in evals[-1] for k in keys) else None
            seeds.append((mean, tasks))
    first = int(config["seed"])
    elapsed = np.array([r[ELAPSED] for r in evals], np.float64) if all(ELAPSED in r for r in evals) else None
    return [
        SeedRun(
            run_dir, first + i, config, task_names, steps, mean, tasks, dir_tasks, protocol, metric, elapsed
        )
        for i, (mean, tasks) in enumerate(seeds)
    ]


def check_choice(option: str, value: str, valid) -> None:
    """A one-line ValueError naming the valid values unless `value` is one of them."""
    if value not in valid:
        raise ValueError(f"unknown {option} {value!r}; valid: {', '.join(valid)}")


def group_runs(runs: list[SeedRun], group_by: list[str] | None = None) -> list[Group]:
    """Groups of seeds with equal config (all fields but `IGNORED_FIELDS`, or only `group_by`).

    Refuses a group that mixes benchmarks or task lists, or holds the same seed twice (not independent).
    """
    if group_by:
        fields = sorted({k for run in runs for k in run.config})
        for name in group_by:
            if name not in fields:
                raise ValueError(f"unknown --group-by field {name!r}; valid fields: {', '.join(fields)}")
    buckets: dict[tuple, list[SeedRun]] = {}
    keys: dict[tuple, dict[str, Any]] = {}
    for run in runs:
        key = _group_key(run.config, group_by)
        bucket = tuple((k, repr(v)) for k, v in sorted(key.items()))
        buckets.setdefault(bucket, []).append(run)
        keys[bucket] = key
    labels = _labels(list(keys.values()), group_by)
    groups = [Group(label, keys[b], tuple(buckets[b])) for b, label in zip(buckets, labels, strict=True)]
    for group in groups:
        _check_group(group)
    return groups


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config dicts as one level with dotted keys; lists become tuples."""
    flat = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = tuple(value) if isinstance(value, list) else value
    return flat


def _eval_records(run_dir: Path, metric: str, protocol: str | None) -> tuple[list[dict[str, Any]], str]:
    """The evaluation records that logged `<protocol>/<metric>`, and the protocol: the one given, else the
    first of `DEFAULT_PROTOCOLS[metric]` the run logged."""
    path = run_dir / "metrics.jsonl"
    records = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut short by a crash
                continue
    candidates = [protocol] if protocol else DEFAULT_PROTOCOLS[metric]
    for candidate in candidates:
        evals = [r for r in records if f"{candidate}/{metric}" in r]
        if evals:
            return evals, candidate
    if not any(f"{p}/success" in r for r in records for p in PROTOCOLS):
        raise ValueError(f"{run_dir} has no evaluation yet (no eval/success in {path.name})")
    wanted = " or ".join(f"{c}/{metric}" for c in candidates)
    raise ValueError(f"{run_dir} logged no {wanted} in {path.name}; choose another --metric or --protocol")


def _task_names(run_dir: Path, last: dict[str, Any], protocol: str, metric: str) -> tuple[str, ...]:
    """The evaluated tasks: the training spec's for MT runs; meta-test tasks are the held-out ones."""
    spec_path = run_dir / "spec.json"
    if spec_path.exists() and protocol != "meta_test":
        return tuple(json.loads(spec_path.read_text())["task_names"])
    prefix, suffix = f"{protocol}/", f"/{metric}"
    names = [
        k[len(prefix) : -len(suffix)]
        for k in last
        if k.startswith(prefix) and k.endswith(suffix) and k.count("/") == 2
    ]
    return tuple(n for n in names if not n.startswith("seed"))


def _columns(evals: list[dict[str, Any]], keys: list[str], run_dir: Path) -> np.ndarray:
    """`[points, len(keys)]` values of `keys` in every evaluation record."""
    for key in keys:
        for record in evals:
            if key not in record:
                raise ValueError(
                    f"{run_dir / 'metrics.jsonl'}: an evaluation at step {record['step']} lacks {key}"
                )
    return np.array([[r[k] for k in keys] for r in evals], np.float64).reshape(len(evals), len(keys))


def _group_key(config: dict[str, Any], group_by: list[str] | None) -> dict[str, Any]:
    if group_by:
        return {k: config.get(k) for k in group_by}
    return {
        k: v
        for k, v in config.items()
        if not any(k == f or (f.endswith(".") and k.startswith(f)) for f in IGNORED_FIELDS)
    }


def _labels(keys: list[dict[str, Any]], group_by: list[str] | None) -> list[str]:
    """Short group names: the agent and the fields in which groups of that agent differ."""
    if group_by:
        return [" ".join(f"{k}={_show(key.get(k))}" for k in group_by) for key in keys]
    fields = sorted({k for key in keys for k in key})
    labels = []
    for key in keys:
        agent = key.get("agent_name")
        parts = [str(agent)]
        for field in fields:
            others = [o for o in keys if not field.startswith("agent.") or o.get("agent_name") == agent]
            if field != "agent_name" and len({repr(o.get(field)) for o in others}) > 1:
                parts.append(f"{field}={_show(key.get(field))}")
        labels.append(" ".join(parts))
    return labels


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return "x".join(map(str, value))
    return str(value)


def _check_group(group: Group) -> None:
    benchmarks = sorted({r.benchmark for r in group.runs})
    if len(benchmarks) > 1:
        raise ValueError(
            f"group {group.label!r} mixes benchmarks {', '.join(benchmarks)}; add env.name to --group-by"
        )
    for run in group.runs[1:]:
        if run.task_names != group.task_names:
            raise ValueError(f"{run.source} evaluates other tasks than {group.runs[0].source} in one group")
    seen: dict[int, SeedRun] = {}
    for run in group.runs:
        if run.seed in seen:
            raise ValueError(
                f"{run.name} and {seen[run.seed].name} share seed {run.seed} in group {group.label!r}: "
                "the same seed twice is not an independent sample; pass only one of them"
            )
        seen[run.seed] = run

"""MiniGrid end to end, as a user runs it: `mtrl train` on all seven tasks (MT7) on both backends, a few PPO
iterations each, and `mtrl evaluate` of a port-trained policy in Farama's own envs.

The full-budget runs are `experiments/` scripts and slow tests; these only show that every piece is wired:
presets, the vmapped seeds, the farama backend inside the jitted loop, the return metrics, the backend switch
of `mtrl evaluate`, one-line errors for agents and envs that do not fit together.
"""

from __future__ import annotations

import json

import pytest

from mtrl.app.cli import main

TASKS = (
    "MiniGrid-DoorKey-6x6-v0",
    "MiniGrid-DistShift1-v0",
    "MiniGrid-RedBlueDoors-6x6-v0",
    "MiniGrid-LavaGapS7-v0",
    "MiniGrid-MemoryS11-v0",
    "MiniGrid-SimpleCrossingS9N2-v0",
    "MiniGrid-MultiRoom-N2-S4-v0",
)
TINY = [
    "--preset",
    "minigrid-mt7-moore",
    "--agent.num-experts",
    "2",
    "--agent.head-hidden",
    "8",
    "--agent.steps-per-iteration",
    "8",
    "--agent.epochs",
    "1",
    "--agent.minibatch-per-task",
    "4",
    "--loop.steps-per-task",
    "16",
    "--loop.eval-every-steps-per-task",
    "0",
    "--loop.eval-envs-per-task",
    "1",
    "--loop.eval-goals-per-task",
    "1",
    "--loop.moore-eval-episodes",
    "1",
    "--loop.log-every-steps-per-task",
    "8",
    "--loop.checkpoint-every-steps-per-task",
    "8",
    "--wandb.mode",
    "disabled",
]


def final_metrics(run_dir) -> dict:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()][-1]


def test_mt7_trains_two_vmapped_seeds_on_the_port_and_evaluates_in_faramas_envs(tmp_path, capsys):
    run_dir = tmp_path / "port"
    assert main(["train", *TINY, "--num-seeds", "2", "--run-dir", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "return" in out and "MiniGrid-MultiRoom-N2-S4-v0" in out
    final = final_metrics(run_dir)
    for prefix in ("eval", "eval_moore"):
        for task in TASKS:
            assert 0.0 <= final[f"{prefix}/{task}/return"] <= 1.0
            assert f"{prefix}/seed1/{task}/return" in final
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert any(line.get("train/episodes", 0) > 0 for line in lines)
    assert lines[0]["step"] == 0 and "eval_moore/return" in lines[0]  # the untrained agent, as logged by them

    assert main(["evaluate", str(run_dir), "--backend", "farama"]) == 0
    [report] = run_dir.glob("evaluation-*.json")
    evaluated = json.loads(report.read_text())
    assert evaluated["backend"] == "farama"
    assert {f"eval_moore/{task}/return" for task in TASKS} <= set(evaluated)
    assert "seed1" in " ".join(evaluated)  # both seeds scored, one after the other


@pytest.mark.slow  # CI covers the farama backend by the evaluation above; training on it is the same loop
def test_mt7_trains_on_faramas_envs(tmp_path, capsys):
    run_dir = tmp_path / "farama"
    flags = [*TINY, "--env.backend", "farama", "--loop.moore-eval-episodes", "0"]  # one protocol: one compile
    assert main(["train", *flags, "--run-dir", str(run_dir)]) == 0
    final = final_metrics(run_dir)
    assert {f"eval/{task}/return" for task in TASKS} <= set(final)
    assert json.loads((run_dir / "config.json").read_text())["env"]["backend"] == "farama"


@pytest.mark.parametrize(
    "args, named",
    [
        (["--preset", "minigrid-mt3-moore", "--agent", "mt_sac"], "continuous"),
        (["--preset", "mt10-mtppo", "--agent", "moore_ppo"], "discrete"),
        (["--preset", "minigrid-mt3-moore", "--env.backend", "official"], "'official'"),
        (["--preset", "minigrid-mt3-moore", "--env.max-episode-steps", "50"], "max_episode_steps"),
        (["--preset", "minigrid-mt3-moore", "--agent.torso", "mlp"], "'mlp'"),
    ],
)
def test_mismatches_are_one_line_errors(args, named, tmp_path, capsys):
    assert main(["train", *args, "--wandb.mode", "disabled", "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and named in err, err
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())

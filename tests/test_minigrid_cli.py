"""MiniGrid end to end, as a user runs it: `mtrl train` on MT3 with two vmapped seeds, a few PPO iterations,
`mtrl evaluate` of the port-trained policy in Farama's own envs, and a transfer run (TL3→5) that starts from
that run's experts, as the MOORE authors chain them. The same on all seven tasks (MT7) and training on the
farama backend are slow tests.

The full-budget runs are `experiments/` scripts and slow tests; these only show that every piece is wired:
presets, the vmapped seeds, the farama backend inside the jitted loop, the return metrics, the backend switch
of `mtrl evaluate`, the experts handed from run to run, one-line errors for agents and envs that do not fit
together.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from mtrl.agents import moore_ppo

from mtrl import checkpoint
from mtrl.app import run, wiring
from mtrl.app.cli import main
from mtrl.app.config import load_run_config
from mtrl.app.flags import train_command
from mtrl.types import EnvSpec

MT3 = ("MiniGrid-LavaGapS7-v0", "MiniGrid-RedBlueDoors-6x6-v0", "MiniGrid-MemoryS11-v0")
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


@pytest.fixture(scope="module")
def mt3_run(tmp_path_factory):
    """A tiny MOORE-PPO run on MT3, seeds 3 and 4 vmapped, filmed at its end; its directory and what
    `mtrl train` printed."""
    run_dir = tmp_path_factory.mktemp("mt3") / "run"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        flags = ["--preset", "minigrid-mt3-moore", *TINY, "--num-seeds", "2", "--seed", "3"]
        flags += ["--loop.video-every-steps-per-task", "16"]
        assert main(["train", *flags, "--run-dir", str(run_dir)]) == 0
    return run_dir, printed.getvalue()


def check_trained_on_the_port_and_evaluated_in_faramas_envs(run_dir, out, tasks):
    assert "return" in out and tasks[-1] in out
    final = final_metrics(run_dir)
    for prefix in ("eval", "eval_moore"):
        for task in tasks:
            assert 0.0 <= final[f"{prefix}/{task}/return"] <= 1.0
            assert f"{prefix}/seed1/{task}/return" in final
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert any(line.get("train/episodes", 0) > 0 for line in lines)
    assert lines[0]["step"] == 0 and "eval_moore/return" in lines[0]  # the untrained agent, as logged by them

    assert main(["evaluate", str(run_dir), "--backend", "farama"]) == 0
    [report] = run_dir.glob("evaluation-*.json")
    evaluated = json.loads(report.read_text())
    assert evaluated["backend"] == "farama"
    assert {f"eval_moore/{task}/return" for task in tasks} <= set(evaluated)
    assert "seed1" in " ".join(evaluated)  # both seeds scored, one after the other


def test_mt3_trains_two_vmapped_seeds_on_the_port_and_evaluates_in_faramas_envs(mt3_run):
    check_trained_on_the_port_and_evaluated_in_faramas_envs(*mt3_run, MT3)


def test_the_episodic_loop_films_the_first_seed_at_the_end(mt3_run):
    run_dir, _ = mt3_run
    [filmed] = (run_dir / "videos").iterdir()
    assert filmed.name == "step-48"  # 16 steps per task, 3 tasks
    episodes = json.loads((filmed / "episodes.json").read_text())
    assert episodes["fps"] == 10 and set(episodes["tasks"]) == set(MT3)
    for task in MT3:
        assert len(episodes["tasks"][task]["return"]) == 1
        assert (filmed / f"{task}.mp4").stat().st_size > 1000 and (filmed / f"{task}.gif").exists()


# MT3 above is the same program with fewer generators; the seven are tested in test_minigrid_env.py
@pytest.mark.slow
def test_mt7_trains_two_vmapped_seeds_on_the_port_and_evaluates_in_faramas_envs(tmp_path):
    run_dir = tmp_path / "port"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        flags = ["--preset", "minigrid-mt7-moore", *TINY, "--num-seeds", "2"]
        assert main(["train", *flags, "--run-dir", str(run_dir)]) == 0
    check_trained_on_the_port_and_evaluated_in_faramas_envs(run_dir, printed.getvalue(), TASKS)


def leaves_equal(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


TRANSFER = ["--preset", "minigrid-tl3-5-moore", *TINY, "--loop.moore-eval-episodes", "0"]


def restored(run_dir):
    """The agent state of `run_dir`'s newest checkpoint."""
    config = load_run_config(run_dir)
    spec = EnvSpec.from_dict(json.loads((run_dir / "spec.json").read_text()))
    return checkpoint.restore(run_dir, wiring.agent_template(config, spec), checkpoint.latest_step(run_dir))


def test_a_transfer_run_starts_from_the_source_seeds_experts(mt3_run, tmp_path, capsys):
    """What `mtrl train --agent.experts-from` starts from, for two seeds: the source's experts, seed s from
    seed s, and fresh heads. (Training from it, experts frozen: test_minigrid_transfer.py; the whole
    command, trained: the slow test below.)"""
    source, _ = mt3_run
    flags = [*TRANSFER, "--agent.experts-from", str(source)]
    config, _ = train_command([*flags, "--num-seeds", "2", "--seed", "3"])  # as `mtrl train` parses them
    train_env, _ = wiring.make_envs(config)
    start = run.transfer_start(config, train_env)
    assert start.iteration == 0
    assert leaves_equal(moore_ppo.experts(restored(source)), moore_ppo.experts(start.state.agent))
    heads = start.state.agent.actor_params["params"]["heads"]
    assert jnp.asarray(jax.tree.leaves(heads)[0]).shape[0] == 2  # two seeds, fresh heads for 2 tasks

    # a seed the source did not train, a source with other experts: one-line errors, nothing is created
    tl = ["train", *flags]
    capsys.readouterr()
    assert main([*tl, "--seed", "9", "--run-dir", str(tmp_path / "bad-seed")]) == 2
    assert "have no source" in capsys.readouterr().err
    assert main([*tl, "--agent.num-experts", "3", "--seed", "3", "--run-dir", str(tmp_path / "bad-k")]) == 2
    assert "num_experts=2" in capsys.readouterr().err
    assert not (tmp_path / "bad-seed").exists() and not (tmp_path / "bad-k").exists()

    # a source stopped before its last checkpoint: refused, naming the step it reached
    unfinished = tmp_path / "unfinished"
    shutil.copytree(source, unfinished)
    last = checkpoint.latest_step(unfinished)
    shutil.rmtree(unfinished / "checkpoints" / str(last))
    stopped_at = checkpoint.latest_step(unfinished)
    stopped = [*tl[:-1], str(unfinished), "--seed", "3", "--run-dir", str(tmp_path / "from-unfinished")]
    assert main(stopped) == 2
    assert f"is unfinished (checkpoint at step {stopped_at} of {last})" in capsys.readouterr().err
    assert not (tmp_path / "from-unfinished").exists()


@pytest.mark.slow  # CI: the start above, and training from it in test_minigrid_transfer.py
def test_a_transfer_run_trains_from_the_source_seeds_experts(mt3_run, tmp_path):
    source, _ = mt3_run
    target = tmp_path / "target"
    tl = ["train", *TRANSFER, "--agent.experts-from", str(source)]
    assert main([*tl, "--num-seeds", "2", "--seed", "3", "--run-dir", str(target)]) == 0
    assert leaves_equal(moore_ppo.experts(restored(source)), moore_ppo.experts(restored(target)))
    assert load_run_config(target).agent.frozen_experts


@pytest.mark.slow  # CI covers the farama backend by the evaluation above; training on it is the same loop
def test_mt7_trains_on_faramas_envs(tmp_path, capsys):
    run_dir = tmp_path / "farama"
    flags = ["--preset", "minigrid-mt7-moore", *TINY, "--env.backend", "farama"]
    flags += ["--loop.moore-eval-episodes", "0"]  # one protocol: one compile
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

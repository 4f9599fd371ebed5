"""`mtrl train` / `mtrl evaluate` as a user runs them: flags, presets, errors, run directories."""

import functools
import json

import gymnasium as gym
import metaworld.evaluation
import numpy as np
import pytest
from PIL import Image

from mtrl.app.cli import main
from mtrl.app.flags import parse_train_args
from mtrl.app.policy import load_policy
from mtrl.app.presets import PRESETS

TOY_FLAGS = [
    "--env.name",
    "toy",
    "--env.envs-per-task",
    "4",
    "--agent.hidden-sizes",
    "16",
    "--loop.steps-per-task",
    "400",
    "--loop.warmup-steps-per-task",
    "100",
    "--loop.steps-per-iteration",
    "25",
    "--loop.batch-per-task",
    "16",
    "--loop.replay-per-task",
    "1000",
    "--loop.eval-every-steps-per-task",
    "0",
    "--loop.eval-envs-per-task",
    "25",
    "--loop.eval-goals-per-task",
    "50",
    "--loop.log-every-steps-per-task",
    "200",
    "--wandb.mode",
    "disabled",
]


def test_default_is_the_mt10_moore_quickstart():
    config = parse_train_args([])
    assert config.preset == "quickstart"
    assert config.agent_name == "moore_sac" and config.env.name == "MT10"


def test_every_field_is_a_flag_and_presets_carry_the_paper_recipe():
    config = parse_train_args(["--preset", "mt10-moore", "--seed", "3", "--agent.num-experts", "6"])
    assert (config.seed, config.agent.num_experts) == (3, 6)
    assert config.loop.batch_per_task == 128 and config.loop.steps_per_task == 2_000_000
    assert parse_train_args(["--preset", "mt50-moore"]).agent.num_experts == 6
    assert parse_train_args(["--preset", "mt10-moore", "--agent", "mh_sac"]).agent_name == "mh_sac"
    for name in PRESETS:
        parse_train_args(["--preset", name])


@pytest.mark.parametrize(
    "args, names",
    [
        (["--preset", "mt11-moore"], "mt10-moore"),
        (["--agent", "dqn"], "moore_sac"),
        (["--env.name", "MT11"] + TOY_FLAGS[2:], "MT10"),
        (["--env.name", "ML10"] + TOY_FLAGS[2:], "meta-RL"),
    ],
    ids=["preset", "agent", "benchmark", "meta-benchmark"],
)
def test_bad_names_give_one_line_listing_valid_ones(args, names, capsys):
    assert main(["train", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert names in err and len(err.splitlines()) == 1, err


@pytest.mark.parametrize(
    "flags, named",
    [
        (["--env.name", "MT10", "--env.backend", "mjx"], "'mjx'"),
        (["--loop.steps-per-task", "0"], "loop.steps_per_task must be positive, got 0"),
        (["--loop.batch-per-task", "-4"], "loop.batch_per_task must be positive, got -4"),
        (["--loop.checkpoint-every-steps-per-task", "-1"], "checkpoint_every_steps_per_task must be >= 0"),
        (["--env.envs-per-task", "0"], "envs_per_task must be >= 1, got 0"),
        (["--num-seeds", "0"], "num_seeds must be >= 1, got 0"),
        (["--agent", "moore_sac", "--agent.num-experts", "0"], "num_experts=0"),
        (["--agent", "moore_sac", "--agent.hidden-sizes", "8", "--agent.num-experts", "9"], "num_experts=9"),
    ],
    ids=["backend", "budget", "batch", "checkpoint-interval", "envs", "seeds", "no-experts", "experts>dim"],
)
def test_bad_values_give_one_line_naming_them_and_create_nothing(flags, named, tmp_path, capsys):
    run_dir = tmp_path / "run"
    args = ["train", *TOY_FLAGS, "--run-dir", str(run_dir), *flags]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert named in err and len(err.splitlines()) == 1, err
    assert not run_dir.exists()


def test_unknown_metaworld_task_is_one_line(capsys):
    assert main(["train", "--env.name", "MT1", "--env.task", "reach-v9", *TOY_FLAGS[2:]]) == 2
    err = capsys.readouterr().err.strip()
    assert "reach-v9" in err and len(err.splitlines()) == 1, err


def test_train_then_evaluate_from_the_command_line(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["train", *TOY_FLAGS, "--run-dir", str(run_dir)]) == 0
    assert "Final evaluation" in capsys.readouterr().out
    assert main(["evaluate", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "point-goal-3" in out and "mean" in out
    [report] = run_dir.glob("evaluation-*.json")
    # the same checkpoint on the same goals with a deterministic policy: the training run's final numbers
    final = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()][-1]
    evaluated = json.loads(report.read_text())
    assert {k: v for k, v in evaluated.items() if k.startswith("eval/")} == {
        k: v for k, v in final.items() if k.startswith("eval/")
    }
    # an existing run directory is refused
    assert main(["train", *TOY_FLAGS, "--run-dir", str(run_dir)]) == 2


def test_evaluate_refuses_a_directory_that_is_not_a_run(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "not an mtrl run directory" in capsys.readouterr().err


def test_train_and_evaluate_on_the_native_metaworld_backend(tmp_path, capsys):
    """`--env.backend native` reaches training, evaluation and `mtrl evaluate` (which rebuilds it); the run
    films its policy at the end of training and again with `mtrl evaluate --video`."""
    run_dir = tmp_path / "native"
    flags = dict(zip(TOY_FLAGS[::2], TOY_FLAGS[1::2], strict=True))
    flags.update(
        {
            "--env.name": "MT1",
            "--env.envs-per-task": "2",
            "--loop.steps-per-task": "100",
            "--loop.warmup-steps-per-task": "50",
            "--loop.steps-per-iteration": "10",
            "--loop.eval-envs-per-task": "2",
            "--loop.eval-goals-per-task": "2",
            "--loop.log-every-steps-per-task": "50",
            "--loop.video-every-steps-per-task": "100",
            "--loop.moore-eval-episodes": "0",  # one protocol, compiled once
        }
    )
    args = [item for pair in flags.items() for item in pair]
    native = ["--env.task", "reach-v3", "--env.backend", "native", "--agent", "mt_sac"]
    assert main(["train", *native, *args, "--run-dir", str(run_dir)]) == 0
    assert "Final evaluation" in capsys.readouterr().out
    # filmed once, at the end (steps_per_task 100): one episode of the run's 150 steps, every 4th step
    # (80 Hz → 20 fps), the last step showing the next reset: 38 frames of 50 ms
    assert json.loads((run_dir / "config.json").read_text())["env"]["max_episode_steps"] == 150
    trained = run_dir / "videos" / "step-100"
    assert _gif_milliseconds(trained / "reach-v3.gif") == 38 * 50  # Pillow merges repeated frames
    assert (trained / "reach-v3.mp4").stat().st_size > 10_000
    filmed = json.loads((trained / "episodes.json").read_text())
    assert filmed["fps"] == 20 and len(filmed["tasks"]["reach-v3"]["success"]) == 1
    assert main(["evaluate", str(run_dir), "--video", "--camera", "topview", "--tasks", "reach-v3"]) == 0
    assert "Filmed episodes" in capsys.readouterr().out
    again = run_dir / "videos" / "step-100-2"  # the training's videos are kept
    assert _gif_milliseconds(again / "reach-v3.gif") == 38 * 50 and (trained / "reach-v3.gif").exists()
    # the same greedy policy and goal from the same state: the episode is the same, filmed from above
    assert json.loads((again / "episodes.json").read_text())["tasks"] == filmed["tasks"]
    assert json.loads((run_dir / "config.json").read_text())["env"]["backend"] == "native"
    assert main(["evaluate", str(run_dir)]) == 0
    [report] = run_dir.glob("evaluation-*.json")
    final = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()][-1]
    assert json.loads(report.read_text())["eval/success"] == final["eval/success"]

    # the loaded policy is a metaworld.evaluation Agent: Meta-World's own evaluation loop scores it, and its
    # numbers agree with mtrl's evaluation of the checkpoint within sampling error
    # built as gym.make_vec("Meta-World/MT1") builds it, but at the run's horizon (metaworld's own is 500):
    # make_vec's max_episode_steps would add a time limit outside metaworld's episode statistics
    horizon = json.loads((run_dir / "config.json").read_text())["env"]["max_episode_steps"]
    reach = functools.partial(metaworld.make_mt_envs, "reach-v3", seed=0, use_one_hot=True, env_id=0,
                              num_tasks=1, max_episode_steps=horizon)  # fmt: skip
    same_step = gym.vector.AutoresetMode.SAME_STEP  # metaworld's loop reads final_info
    envs = gym.vector.SyncVectorEnv([reach, reach], autoreset_mode=same_step)
    assert envs.get_attr("_max_episode_steps") == (horizon, horizon)
    policy = load_policy(run_dir)
    episodes = 50
    success, _, per_task, returns = metaworld.evaluation.evaluation(policy, envs, num_episodes=episodes)
    envs.close()
    assert set(per_task) == {"reach-v3"} and len(returns["reach-v3"]) == episodes
    # metaworld's loop draws a goal of reach's 50 for each episode (and stops it at its first success);
    # mtrl plays each of the 50 once: the same success rate, up to binomial sampling error (3 sigma). Even
    # this barely trained policy reaches some goals (measured: mtrl 0.16, metaworld 0.20 over 50 episodes,
    # both at horizon 150), so an adapter that fed the policy the wrong observation would show.
    ours = final["eval/success"]  # mtrl's final evaluation: every goal once, deterministic
    assert 0 < ours < 1 and success > 0
    assert abs(success - ours) <= 3 * np.sqrt(ours * (1 - ours) / episodes), (success, ours)


def _gif_milliseconds(path) -> int:
    gif = Image.open(path)
    total = 0
    for index in range(gif.n_frames):
        gif.seek(index)
        total += gif.info["duration"]
    return total

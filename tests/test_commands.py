"""The commands at their edges: what is refused before anything runs, how stops and aborts behave, the
sweep's dry run, `mtrl.train` from Python, and several updates per vector step."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import textwrap

import jax
import numpy as np
import pytest
from mtrl.agents import mt_sac
from rich.console import Console

import mtrl
from mtrl import envs, training
from mtrl.app import wiring
from mtrl.app.cli import main
from mtrl.app.config import EnvConfig, TrainConfig, load_run_config, to_json
from mtrl.app.presets import get_preset
from mtrl.app.resume import check_resumable
from mtrl.app.run import stop_on_signal
from mtrl.app.signals import StopSignals
from mtrl.logger import WandbConfig

QUIET = Console(quiet=True)


def tiny_toy(run_dir=None, **loop) -> TrainConfig:
    return TrainConfig(
        agent=mt_sac.Config(hidden_sizes=(8,)),
        env=EnvConfig(name="toy", envs_per_task=2, toy_num_tasks=2),
        loop=training.LoopConfig(
            steps_per_task=120,
            warmup_steps_per_task=40,
            steps_per_iteration=20,
            batch_per_task=16,
            replay_per_task=1_000,
            eval_every_steps_per_task=0,
            eval_envs_per_task=2,
            eval_goals_per_task=2,
            log_every_steps_per_task=40,
            **loop,
        ),
        wandb=WandbConfig(mode="disabled"),
        run_dir=run_dir,
    )


def test_seeds_on_a_host_backend_are_refused_before_anything_is_built(tmp_path, capsys):
    args = ["--env.name", "MT1", "--env.task", "reach-v3", "--env.backend", "official"]
    code = main(["train", "--num-seeds", "3", *args, "--run-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "--num-seeds 3" in err and "official backend of MT1 cannot" in err
    assert "--env.backend native" in err
    assert not (tmp_path / "run").exists()


def test_several_seeds_are_accepted_on_pure_jax_envs_and_native_metaworld_and_evaluated_on_host_ones():
    wiring.check_trainable(dataclasses.replace(tiny_toy(), num_seeds=3))
    wiring.check_trainable(dataclasses.replace(get_preset("mt10-moore"), num_seeds=3))  # native backend
    minigrid = dataclasses.replace(get_preset("minigrid-mt3-moore"), num_seeds=5)
    wiring.check_trainable(minigrid)
    on_farama = dataclasses.replace(minigrid, env=dataclasses.replace(minigrid.env, backend="farama"))
    wiring.check_compatible(on_farama)  # evaluation plays the seeds one after another
    with pytest.raises(ValueError, match="farama backend of MiniGrid-MT3 cannot .* --env.backend jax"):
        wiring.check_trainable(on_farama)


def test_the_first_signal_asks_for_a_stop_and_a_second_ctrl_c_aborts(capsys):
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with stop_on_signal(Console(file=None)) as stop:
        assert not stop.requested()
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested()
        os.kill(os.getpid(), signal.SIGTERM)  # a second SIGTERM does not abort: the stop is on its way
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert "SIGTERM: stopping after this iteration" in capsys.readouterr().out
    assert {s: signal.getsignal(s) for s in handlers} == handlers  # the previous handlers are back


def test_stop_signals_count_what_the_sweep_launcher_forwards():
    seen = []
    with StopSignals(lambda signum, count: seen.append((signum, count))) as stop:
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)
    assert stop.count == 2 and seen == [(signal.SIGINT, 1), (signal.SIGTERM, 2)]


def test_sweep_dry_run_lists_every_run_and_its_command_and_starts_nothing(tmp_path, capsys):
    sweep_file = tmp_path / "tiny.py"
    sweep_file.write_text(
        textwrap.dedent(
            f"""
            from pathlib import Path
            from mtrl.app.sweep_grid import Sweep
            from mtrl.app.presets import get_preset
            import dataclasses
            from mtrl.app.config import EnvConfig

            SWEEP = Sweep(
                name="tiny",
                base=dataclasses.replace(get_preset("quickstart"), env=EnvConfig(name="toy")),
                grid={{"agent.num_experts": [2, 3]}},
                seeds=[0, 1],
                root=Path({str(tmp_path / "sweeps")!r}),
            )
            """
        )
    )
    assert main(["sweep", str(sweep_file), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "num_experts=2-s0-1 train mtrl train --preset quickstart" in out
    assert "--agent.num-experts 3" in out and "--num-seeds 2" in out
    assert not (tmp_path / "sweeps").exists()  # nothing written, nothing started


def test_mtrl_train_from_python_writes_a_run(tmp_path):
    result = mtrl.train(tiny_toy(tmp_path / "run"))
    assert result.run_dir == tmp_path / "run" and (result.run_dir / "success_table.md").exists()
    assert set(result.success_per_task) == {"point-goal-0", "point-goal-1"}
    # the backend the run used is named in its config, though the config left it to the default
    assert tiny_toy().env.backend is None and load_run_config(result.run_dir).env.backend == "jax"


def test_meta_world_defaults_to_native_and_runs_recorded_without_a_backend_stay_official(tmp_path):
    from mtrl.envs.metaworld.native.env import NativeEnv

    assert isinstance(envs.make("MT1", task="reach-v3"), NativeEnv)
    config = TrainConfig(agent=mt_sac.Config(), env=EnvConfig(name="MT1", task="reach-v3"), run_dir=tmp_path)
    assert wiring.with_backend(config).env.backend == "native"
    recorded = to_json(config)  # a run of before the switch: config.json with "backend": null
    (tmp_path / "config.json").write_text(json.dumps(recorded, default=str))
    assert load_run_config(tmp_path).env.backend == "official"
    with pytest.raises(ValueError, match=r"env.backend \('official' -> 'native'\)"):
        check_resumable(load_run_config(tmp_path), config)  # resuming it on the new default is refused
    check_resumable(wiring.with_backend(config), config)  # a new run's named default matches


def test_updates_per_step_multiplies_the_gradient_steps():
    def gradient_steps(updates_per_step: int) -> int:
        config = tiny_toy(updates_per_step=updates_per_step)
        train_env, eval_env = wiring.make_envs(config)
        state, _ = training.train(
            train_env, eval_env, wiring.make_agent(config), config.loop, jax.random.key(0)
        )
        return int(np.asarray(state.agent.step))

    one, three = gradient_steps(1), gradient_steps(3)
    # (120 - 40 warm-up) steps per task, 2 envs per task: 40 vector steps after warm-up, one update each.
    assert (one, three) == (40, 120)

"""Transfer between MiniGrid task sets as the MOORE authors ran it: a TL run starts from the source run's
expert CNNs (seed s from seed s), keeps them frozen, and trains fresh task weights and heads on the new
tasks."""

from __future__ import annotations

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from mtrl.agents import moore_ppo

from mtrl import checkpoint, envs
from mtrl.app import wiring
from mtrl.app.cli import main
from mtrl.app.config import load_run_config
from mtrl.app.presets import get_preset
from mtrl.types import EnvSpec

TINY = {"head_hidden": 8, "steps_per_iteration": 8, "epochs": 1, "minibatch_per_task": 4}
FLAGS = [
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
    "0",
    "--loop.log-every-steps-per-task",
    "8",
    "--wandb.mode",
    "disabled",
]


def leaves_equal(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


@pytest.fixture(scope="module")
def tl_env():
    return envs.make("MiniGrid-TL3-5")


def test_transfer_envs_hold_only_the_new_tasks():
    assert envs.make("MiniGrid-TL3-5").spec.task_names == (
        "MiniGrid-DoorKey-6x6-v0",
        "MiniGrid-DistShift1-v0",
    )
    assert envs.make("MiniGrid-TL5-7").spec.task_names == (
        "MiniGrid-SimpleCrossingS9N2-v0",
        "MiniGrid-MultiRoom-N2-S4-v0",
    )


def test_frozen_experts_stay_fixed_while_task_weights_and_heads_train(tl_env):
    config = moore_ppo.Config(frozen_experts=True, **TINY)
    state = moore_ppo.init(jax.random.key(0), tl_env.spec, config)
    trained, metrics = jax.jit(lambda s, k: moore_ppo.train_iteration(tl_env, s, k))(state, jax.random.key(1))
    assert np.isfinite(metrics["train/policy_loss"])
    for before, after in (
        (state.actor_params, trained.actor_params),
        (state.critic_params, trained.critic_params),
    ):
        assert leaves_equal(before["params"]["experts"], after["params"]["experts"])
        for name in ("task_weights", "heads"):
            assert not leaves_equal(before["params"][name], after["params"][name]), name
    # without freezing the same step moves the experts: the test above would notice a no-op optimiser
    free = moore_ppo.init(jax.random.key(0), tl_env.spec, dataclasses.replace(config, frozen_experts=False))
    moved, _ = moore_ppo.train_iteration(tl_env, free, jax.random.key(1))
    assert not leaves_equal(free.actor_params["params"]["experts"], moved.actor_params["params"]["experts"])


def test_with_experts_replaces_only_the_experts_and_checks_shapes(tl_env):
    config = moore_ppo.Config(**TINY)
    a = moore_ppo.init(jax.random.key(0), tl_env.spec, config)
    b = moore_ppo.init(jax.random.key(1), tl_env.spec, config)
    mixed = moore_ppo.with_experts(a, *moore_ppo.experts(b))
    assert leaves_equal(moore_ppo.experts(mixed), moore_ppo.experts(b))
    assert leaves_equal(mixed.actor_params["params"]["heads"], a.actor_params["params"]["heads"])
    assert leaves_equal(
        mixed.critic_params["params"]["task_weights"], a.critic_params["params"]["task_weights"]
    )
    three = moore_ppo.init(jax.random.key(1), tl_env.spec, dataclasses.replace(config, num_experts=3))
    with pytest.raises(ValueError, match="num_experts must match"):
        moore_ppo.with_experts(a, *moore_ppo.experts(three))


def test_frozen_experts_without_a_source_are_refused():
    with pytest.raises(ValueError, match="--agent.experts-from"):
        wiring.check_compatible(get_preset("minigrid-tl3-5-moore"))
    wiring.check_compatible(get_preset("minigrid-tl3-5-moore-noinit"))
    with pytest.raises(ValueError, match="torso 'shared' has none"):
        moore_ppo.Config(torso="shared", frozen_experts=True)


def test_a_transfer_run_starts_from_the_source_seeds_experts(tmp_path, capsys):
    source = tmp_path / "source"  # any moore_ppo run with the same torso and experts will do: a small one
    mt3 = [
        "train",
        "--preset",
        "minigrid-mt3-moore",
        "--env.name",
        "MiniGrid-MT1",
        "--env.task",
        "LavaGapS7",
        *FLAGS,
    ]
    assert main([*mt3, "--num-seeds", "2", "--seed", "3", "--run-dir", str(source)]) == 0
    target = tmp_path / "target"
    tl = ["train", "--preset", "minigrid-tl3-5-moore", *FLAGS, "--agent.experts-from", str(source)]
    assert main([*tl, "--num-seeds", "2", "--seed", "3", "--run-dir", str(target)]) == 0

    def restored(run_dir):
        config = load_run_config(run_dir)
        spec = EnvSpec.from_dict(json.loads((run_dir / "spec.json").read_text()))
        return checkpoint.restore(
            run_dir, wiring.agent_template(config, spec), checkpoint.latest_step(run_dir)
        )

    source_state, target_state = restored(source), restored(target)
    assert leaves_equal(moore_ppo.experts(source_state), moore_ppo.experts(target_state))  # seed s ← seed s
    heads = target_state.actor_params["params"]["heads"]
    assert jnp.asarray(jax.tree.leaves(heads)[0]).shape[0] == 2  # two seeds, fresh heads for 2 tasks

    # a seed the source did not train, a source with other experts: one-line errors, nothing is created
    capsys.readouterr()
    assert main([*tl, "--seed", "9", "--run-dir", str(tmp_path / "bad-seed")]) == 2
    assert "have no source" in capsys.readouterr().err
    assert main([*tl, "--agent.num-experts", "3", "--seed", "3", "--run-dir", str(tmp_path / "bad-k")]) == 2
    assert "num_experts=2" in capsys.readouterr().err
    assert not (tmp_path / "bad-seed").exists() and not (tmp_path / "bad-k").exists()

"""Transfer between MiniGrid task sets as the MOORE authors ran it: a TL run starts from the source run's
expert CNNs (seed s from seed s), keeps them frozen, and trains fresh task weights and heads on the new
tasks. The run-to-run handover through `mtrl train --agent.experts-from` is in test_minigrid_cli.py."""

from __future__ import annotations

import dataclasses
import functools

import jax
import numpy as np
import pytest
from mtrl.agents import moore_ppo

from mtrl import envs
from mtrl.app import wiring
from mtrl.app.presets import get_preset

TINY = {"head_hidden": 8, "steps_per_iteration": 8, "epochs": 1, "minibatch_per_task": 4}


def leaves_equal(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


@pytest.fixture(scope="module")
def tl_env():
    return envs.make("MiniGrid-TL3-5")


@functools.cache
def _compiled_init(env, config: moore_ppo.Config):
    return jax.jit(lambda key: moore_ppo.init(key, env.spec, config))


def init(key: int, env, config: moore_ppo.Config) -> moore_ppo.State:
    """`moore_ppo.init` as one compiled program per config (eagerly, each initialiser compiles on its own)."""
    return _compiled_init(env, config)(jax.random.key(key))


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
    state = init(0, tl_env, config)
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
    free = init(0, tl_env, dataclasses.replace(config, frozen_experts=False))
    moved, _ = jax.jit(lambda s, k: moore_ppo.train_iteration(tl_env, s, k))(free, jax.random.key(1))
    assert not leaves_equal(free.actor_params["params"]["experts"], moved.actor_params["params"]["experts"])


def test_with_experts_replaces_only_the_experts_and_checks_shapes(tl_env):
    config = moore_ppo.Config(**TINY)
    a = init(0, tl_env, config)
    b = init(1, tl_env, config)
    mixed = moore_ppo.with_experts(a, *moore_ppo.experts(b))
    assert leaves_equal(moore_ppo.experts(mixed), moore_ppo.experts(b))
    assert leaves_equal(mixed.actor_params["params"]["heads"], a.actor_params["params"]["heads"])
    assert leaves_equal(
        mixed.critic_params["params"]["task_weights"], a.critic_params["params"]["task_weights"]
    )
    three = init(1, tl_env, dataclasses.replace(config, num_experts=3))
    with pytest.raises(ValueError, match="num_experts must match"):
        moore_ppo.with_experts(a, *moore_ppo.experts(three))


def test_frozen_experts_without_a_source_are_refused():
    with pytest.raises(ValueError, match="--agent.experts-from"):
        wiring.check_compatible(get_preset("minigrid-tl3-5-moore"))
    wiring.check_compatible(get_preset("minigrid-tl3-5-moore-noinit"))
    with pytest.raises(ValueError, match="torso 'shared' has none"):
        moore_ppo.Config(torso="shared", frozen_experts=True)

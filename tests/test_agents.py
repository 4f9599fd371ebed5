"""The contract every SAC-family agent keeps: init/act/update under jit and vmap, orbax, lookup."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import SAC_AGENTS, SAC_CONFIGS, SPEC, fast_key, flat, make_batch
from mtrl.agents import AGENTS, get_agent

from mtrl.checkpoint import Checkpointer, restore
from mtrl.offpolicy import OffPolicyState
from mtrl.types import AgentTraits


@functools.cache
def agent_and_init(name: str):
    """The agent module and its `init` on SPEC, jitted (one compiled program per agent for every test)."""
    agent = get_agent(name)
    init = jax.jit(functools.partial(agent.init, spec=SPEC, config=agent.Config(**SAC_CONFIGS[name])))
    return agent, init


# The agents share one `update` and `act`; one jitted wrapper each caches every agent's programs.
update = jax.jit(get_agent("mt_sac").update)
act = jax.jit(get_agent("mt_sac").act, static_argnames="deterministic")


@pytest.mark.parametrize("name", SAC_AGENTS)
def test_update_under_jit(name):
    agent, init = agent_and_init(name)
    state = init(fast_key(0))
    batch = make_batch(1, [0, 1])  # task 2 absent from this batch
    assert agent.update is update.__wrapped__
    new_state, metrics = update(state, batch, fast_key(2))

    for metric in ("critic_loss", "actor_loss", "alpha_loss", "alpha_mean", "q_mean", "entropy"):
        assert f"train/{metric}" in metrics, metric
    for metric, value in metrics.items():  # the torsos' own metrics too (task weights, ...)
        assert np.all(np.isfinite(value)), metric
    assert not np.allclose(flat(new_state.actor_params), flat(state.actor_params))
    assert not np.allclose(flat(new_state.critic_params), flat(state.critic_params))
    tau = state.config.tau
    expected_target = (1 - tau) * flat(state.target_critic_params) + tau * flat(new_state.critic_params)
    np.testing.assert_allclose(flat(new_state.target_critic_params), expected_target, atol=1e-6)
    moved = ~np.isclose(new_state.log_alphas, state.log_alphas)
    np.testing.assert_array_equal(moved, [True, True, False])
    assert int(new_state.step) == 1


@pytest.mark.parametrize("name", SAC_AGENTS)
def test_updates_fit_the_critic_to_a_fixed_batch(name):
    """200 updates on one batch of terminal transitions, whose critic target is the reward itself: the
    critic loss (the mean of 5 updates) falls at least 5-fold (measured: 11- to 1000-fold). CI's learning
    check of every torso (their learning runs on the toy tasks are slow, but MT-SAC's in test_training).
    Reuses test_update_under_jit's compiled program: same shapes, fresh keys."""
    agent, init = agent_and_init(name)
    state = init(fast_key(0))
    batch = make_batch(1, [0, 1])
    batch = batch.replace(terminated=np.ones_like(batch.terminated))
    losses = []
    for step in range(200):
        state, metrics = update(state, batch, fast_key(100 + step))
        losses.append(metrics["train/critic_loss"])
    losses = np.asarray(losses)
    assert np.all(np.isfinite(losses))
    assert losses[-5:].mean() < 0.2 * losses[:5].mean(), (losses[:5], losses[-5:])


@pytest.mark.parametrize("name", SAC_AGENTS)
def test_act_is_tanh_of_the_policys_mean_or_of_its_reparameterised_sample(name):
    """The actor torso applied here by hand (SPEC has no one-hot columns, so it reads the whole observation),
    its output split into the mean (first half) and log-std (second half, clamped to the config's range):
    deterministic acting is exactly tanh(mean) and sampling is tanh(mean + exp(log_std) ε) with
    ε = normal(key), for every row's own task."""
    agent, init = agent_and_init(name)
    state = init(fast_key(0))
    # unit-scale observations keep tanh(mean) off its ±1 plateaus, where a wrong mean would not show
    obs = np.random.default_rng(1).normal(size=(5, SPEC.obs_size)).astype(np.float32)
    task_id = jnp.array([0, 1, 2, 0, 1], jnp.int32)
    assert agent.act is act.__wrapped__

    out = np.asarray(jax.jit(state.networks.actor.apply)(state.actor_params, obs, task_id), np.float64)
    assert out.shape == (5, 2 * SPEC.action_size)
    mean, log_std = out[:, : SPEC.action_size], out[:, SPEC.action_size :]
    assert np.abs(np.tanh(mean)).max() < 0.999
    log_std = np.clip(log_std, state.config.log_std_min, state.config.log_std_max)

    greedy = [np.asarray(act(state, obs, task_id, fast_key(k), deterministic=True)) for k in (2, 3)]
    np.testing.assert_allclose(greedy[0], np.tanh(mean), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(greedy[0], greedy[1])  # the key plays no part

    for k in (2, 3):
        noise = np.asarray(jax.random.normal(fast_key(k), (5, SPEC.action_size)), np.float64)
        sampled = np.asarray(act(state, obs, task_id, fast_key(k), deterministic=False))
        np.testing.assert_allclose(sampled, np.tanh(mean + np.exp(log_std) * noise), rtol=1e-5, atol=1e-5)
        assert np.all(np.abs(sampled) <= 1.0)
    # the draws are not the mean action: the check above tells mean and log-std apart
    assert np.abs(sampled - greedy[0]).max() > 1e-2


def test_vmap_over_seeds():
    # The torsos differ, the core is shared: vmap the agent with the most structure (experts).
    agent, init = agent_and_init("moore_sac")
    seeds = 3
    states = jax.vmap(init)(jax.random.split(fast_key(0), seeds))
    batches = make_batch(1, [0, 1, 2], 4, seeds)
    keys = jax.random.split(fast_key(2), seeds)
    states, metrics = jax.jit(jax.vmap(agent.update))(states, batches, keys)
    assert metrics["train/critic_loss"].shape == (seeds,)
    assert np.all(np.isfinite(metrics["train/critic_loss"]))
    assert states.log_alphas.shape == (seeds, SPEC.num_tasks)
    act = jax.vmap(functools.partial(agent.act, deterministic=False))
    actions = act(states, batches.obs, batches.task_id, keys)
    assert actions.shape == (seeds, 12, SPEC.action_size)
    assert not np.allclose(actions[0], actions[1])  # seeds differ


@pytest.mark.parametrize("name", SAC_AGENTS)
def test_state_round_trips_through_orbax(name, tmp_path):
    _, init = agent_and_init(name)
    state = init(fast_key(0))
    checkpointer = Checkpointer(tmp_path)
    # the agent is one item of a run checkpoint; the rest of the train state is not needed here
    checkpointer.save(
        1, OffPolicyState(agent=state, env=None, timestep=None, replay=None, stats=None, key=None)
    )
    checkpointer.close()
    restored = restore(tmp_path, init(fast_key(5)))
    assert jax.tree.structure(restored) == jax.tree.structure(state)
    np.testing.assert_array_equal(flat(restored), flat(state))


def test_unknown_agent_names_the_valid_ones():
    with pytest.raises(ValueError, match="'ppo'.*mt_sac, mh_sac, moore_sac"):
        get_agent("ppo")


@pytest.mark.parametrize("name", AGENTS)
def test_every_agent_declares_traits_that_match_its_functions(name):
    """The wiring trusts `TRAITS` instead of probing modules, so a wrong declaration must fail here."""
    module = get_agent(name)
    traits = module.TRAITS
    assert isinstance(traits, AgentTraits)
    required = {"Config", "init", "act"} | ({"update"} if traits.loop == "replay" else {"train_iteration"})
    if traits.loop == "episodic":
        required |= {"vector_steps_per_iteration", "episodes_per_goal"}
    if traits.meta:
        required |= {"init_adaptation", "adapt", "check_meta_protocol"}
    missing = sorted(f for f in required if not callable(getattr(module, f, None)))
    assert not missing, f"{name} declares {traits} but lacks {missing}"
    assert traits.loop in ("replay", "episodic")
    assert not traits.meta or traits.loop == "episodic"  # meta-RL agents collect their own episodes
    fields = {f.name for f in dataclasses.fields(module.Config)}
    assert traits.expert_transfer == ({"experts_from", "frozen_experts"} <= fields)


def test_moore_config_refuses_more_experts_than_representation_size():
    with pytest.raises(ValueError, match="num_experts=500"):
        get_agent("moore_sac").Config(num_experts=500)

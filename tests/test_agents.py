"""The contract every SAC-family agent keeps: init/act/update under jit and vmap, orbax, lookup."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from mtrl.agents import AGENTS, get_agent

from mtrl.checkpoint import Checkpointer, restore
from mtrl.rollout import TrainState
from mtrl.types import AgentTraits, EnvSpec, Transition

SPEC = EnvSpec(
    name="test",
    obs_size=6,
    action_size=2,
    task_names=("a", "b", "c"),
    envs_per_task=1,
    episode_length=10,
    goals_per_task=1,
)
SMALL = {"hidden_sizes": (32, 32)}
CONFIGS = {
    "mt_sac": SMALL,
    "mh_sac": SMALL,
    "moore_sac": {**SMALL, "num_experts": 2},
    "care_sac": {**SMALL, "num_encoders": 2, "encoder_sizes": (8, 8), "context_sizes": (8, 8)},
    "paco_sac": {**SMALL, "num_components": 2},
    "softmod_sac": {**SMALL, "module_size": 8, "routing_sizes": (8, 8)},
    "hyper_sac": {**SMALL, "hyper_sizes": (8, 8), "embedding_size": 4},
}


def make_batch(seed: int, task_ids: list[int], rows_per_task: int = 4, *lead: int) -> Transition:
    """Random rows, `rows_per_task` for each of `task_ids`, with optional leading (seed) axes."""
    rng = np.random.default_rng(seed)
    task_id = np.repeat(np.asarray(task_ids, np.int32), rows_per_task)
    n = task_id.shape[0]
    return Transition(
        obs=rng.normal(size=(*lead, n, SPEC.obs_size)).astype(np.float32),
        action=rng.uniform(-1, 1, size=(*lead, n, SPEC.action_size)).astype(np.float32),
        reward=rng.normal(size=(*lead, n)).astype(np.float32),
        next_obs=rng.normal(size=(*lead, n, SPEC.obs_size)).astype(np.float32),
        terminated=np.broadcast_to(np.arange(n) % 5 == 0, (*lead, n)).astype(np.float32),
        task_id=np.broadcast_to(task_id, (*lead, n)).copy(),
    )


def fast_key(seed: int) -> jax.Array:
    """An "rbg" key: XLA compiles threefry slowly on CPU, and tiny-network tests are compile time.

    Under vmap, rbg draws differ from unbatched ones; the vmap test checks that vmap works, not that
    batched seeds reproduce single runs (the training-loop tests do that with default keys).
    """
    return jax.random.key(seed, impl="rbg")


SAC_AGENTS = [name for name, module in AGENTS.items() if not hasattr(module, "train_iteration")]
"""The SAC family, which shares `update` and `act` (episodic agents have their own test files)."""


@functools.cache
def agent_and_init(name: str):
    agent = get_agent(name)
    init = functools.partial(agent.init, spec=SPEC, config=agent.Config(**CONFIGS[name]))
    return agent, init


# The agents share one `update` and `act`; one jitted wrapper each caches every agent's programs.
update = jax.jit(get_agent("mt_sac").update)
act = jax.jit(get_agent("mt_sac").act, static_argnames="deterministic")


def flat(tree) -> np.ndarray:
    return np.concatenate([np.ravel(x) for x in jax.tree.leaves(tree)])


@pytest.mark.parametrize("name", SAC_AGENTS)
def test_update_under_jit(name):
    agent, init = agent_and_init(name)
    state = init(fast_key(0))
    batch = make_batch(1, [0, 1])  # task 2 absent from this batch
    assert agent.update is update.__wrapped__
    new_state, metrics = update(state, batch, fast_key(2))

    for metric in ("critic_loss", "actor_loss", "alpha_loss", "alpha_mean", "q_mean", "entropy"):
        assert np.isfinite(metrics[f"train/{metric}"]), metric
    assert not np.allclose(flat(new_state.actor_params), flat(state.actor_params))
    assert not np.allclose(flat(new_state.critic_params), flat(state.critic_params))
    tau = state.config.tau
    expected_target = (1 - tau) * flat(state.target_critic_params) + tau * flat(new_state.critic_params)
    np.testing.assert_allclose(flat(new_state.target_critic_params), expected_target, atol=1e-6)
    moved = ~np.isclose(new_state.log_alphas, state.log_alphas)
    np.testing.assert_array_equal(moved, [True, True, False])
    assert int(new_state.step) == 1


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


def test_state_round_trips_through_orbax(tmp_path):
    _, init = agent_and_init("moore_sac")
    state = init(fast_key(0))
    checkpointer = Checkpointer(tmp_path)
    # the agent is one item of a run checkpoint; the rest of the train state is not needed here
    checkpointer.save(1, TrainState(agent=state, env=None, timestep=None, replay=None, stats=None, key=None))
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

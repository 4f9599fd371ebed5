"""MOORE and the SAC family as their authors ran them: what the torsos read, initialisation, update order,
the critic-only warm-up, and the presets against docs/fidelity.md.

Each test fails if the departure it guards came back (see docs/fidelity.md for the references).
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import fast_key
from mtrl.agents import AGENTS, get_agent, moore_sac, sac
from mtrl.agents.sac import losses
from mtrl.agents.sac.networks import policy, q_values

from mtrl.app.presets import PRESETS, get_preset
from mtrl.types import EnvSpec, Transition

STATE, TASKS, ACT = 5, 3, 2
SPEC = EnvSpec(
    name="test",
    obs_size=STATE + TASKS,
    action_size=ACT,
    task_names=("a", "b", "c"),
    envs_per_task=1,
    episode_length=10,
    goals_per_task=1,
    task_id_columns=TASKS,
)
SMALL = {
    "moore_sac": {"hidden_sizes": (16, 16), "num_experts": 2},
    "care_sac": {"hidden_sizes": (16,), "num_encoders": 2, "encoder_sizes": (8, 8), "context_sizes": (8, 8)},
    "paco_sac": {"hidden_sizes": (16, 16), "num_components": 2},
    "softmod_sac": {"hidden_sizes": (16, 16), "module_size": 8, "routing_sizes": (8, 8)},
    "hyper_sac": {"hidden_sizes": (16, 16), "hyper_sizes": (8, 8), "embedding_size": 4},
    "mt_sac": {"hidden_sizes": (16, 16)},
    "mh_sac": {"hidden_sizes": (16, 16)},
}
TASK_ROUTED = ("moore_sac", "care_sac", "paco_sac", "softmod_sac", "hyper_sac")


def observations(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of every task with their true one-hot, and the same rows with a wrong one-hot."""
    rng = np.random.default_rng(seed)
    task_id = np.repeat(np.arange(TASKS, dtype=np.int32), 4)
    state = rng.normal(size=(task_id.size, STATE)).astype(np.float32)
    eye = np.eye(TASKS, dtype=np.float32)
    right = np.concatenate([state, eye[task_id]], axis=1)
    wrong = np.concatenate([state, eye[(task_id + 1) % TASKS]], axis=1)
    return right, wrong, task_id


@jax.jit
def _outputs(state, obs, task_id):
    mean, log_std = policy(state.networks, state.actor_params, obs, task_id, state.config)
    return mean, log_std, q_values(state.networks, state.critic_params, obs, jnp.tanh(mean), task_id)


def outputs(state, obs, task_id):
    """The policy's mean and log-std and every critic's Q at tanh(mean), as NumPy arrays."""
    return tuple(np.asarray(x) for x in _outputs(state, obs, task_id))


def perturbed_agent(module, config):
    """`module`'s agent on SPEC with noise on every parameter: some start equal for every task (PaCo's
    compositions). Jitted, with "rbg" keys: run eagerly, every Flax op and threefry draw compiles alone."""

    @jax.jit
    def build(key):
        init_key, noise_key = jax.random.split(key)
        state = module.init(init_key, SPEC, config)
        leaves, treedef = jax.tree.flatten((state.actor_params, state.critic_params))
        keys = jax.random.split(noise_key, len(leaves))
        leaves = [x + 0.1 * jax.random.normal(k, x.shape, x.dtype) for x, k in zip(leaves, keys, strict=True)]
        actor, critic = jax.tree.unflatten(treedef, leaves)
        return state.replace(actor_params=actor, critic_params=critic)

    return build(jax.random.key(0, impl="rbg"))


@pytest.mark.parametrize("name", TASK_ROUTED)
def test_task_routed_torsos_ignore_the_observation_one_hot(name):
    """MOORE's experts, CARE's encoders, SoftMod's base network, PaCo's parameter sets (and Hyper-SAC's main
    network) read the state; the task reaches them only through their own routing by `task_id`."""
    module = get_agent(name)
    right, wrong, task_id = observations()
    state = perturbed_agent(module, module.Config(**SMALL[name]))
    for ours, changed in zip(outputs(state, right, task_id), outputs(state, wrong, task_id), strict=True):
        np.testing.assert_array_equal(ours, changed)
    # the task still matters, through task_id
    other = outputs(state, right, (task_id + 1) % TASKS)
    assert not np.allclose(outputs(state, right, task_id)[0], other[0])
    # the ablation switch feeds the one-hot back in
    ablation = perturbed_agent(module, module.Config(**SMALL[name], one_hot_input=True))
    assert not np.allclose(outputs(ablation, right, task_id)[0], outputs(ablation, wrong, task_id)[0])


@pytest.mark.parametrize("name", ["mt_sac", "mh_sac"])
def test_mt_sac_and_mh_sac_keep_the_one_hot(name):
    module = get_agent(name)
    right, wrong, task_id = observations()
    state = perturbed_agent(module, module.Config(**SMALL[name]))
    assert not np.allclose(outputs(state, right, task_id)[0], outputs(state, wrong, task_id)[0])


def test_moore_experts_have_the_state_as_input():
    config = moore_sac.Config(**SMALL["moore_sac"])
    state = jax.eval_shape(lambda key: moore_sac.init(key, SPEC, config), jax.random.key(0))  # shapes only
    actor_in = state.actor_params["params"]["experts"]["mlps"]["dense_0"]["kernel"].shape
    critic_in = state.critic_params["params"]["experts"]["mlps"]["dense_0"]["kernel"].shape
    assert actor_in == (2, STATE, 16)  # k experts, the state only
    assert critic_in == (2, 2, STATE + ACT, 16)  # twin critics, k experts, state and action


def test_moore_initialisation_follows_the_authors_code():
    """Experts: U(±1/√fan_in) weights and biases (PyTorch's default, which the authors' ParallelLayer resets
    them to); task weights: xavier-uniform U(±√(6/(T+k))); heads: xavier-uniform, bias U(±1/√d)."""
    config = moore_sac.Config(hidden_sizes=(400, 400), num_experts=4)
    spec = EnvSpec(**{**SPEC.__dict__, "obs_size": 39 + 10, "task_names": tuple("abcdefghij"),
                      "task_id_columns": 10, "action_size": 4})  # fmt: skip
    params = moore_sac.init(jax.random.key(0), spec, config).actor_params["params"]

    def check_uniform(x, bound):
        x = np.asarray(x).ravel()
        assert np.abs(x).max() <= bound
        if x.size >= 1000:  # enough draws to pin the spread: U(−b, b) has variance b²/3
            assert np.abs(x).max() > 0.99 * bound
            np.testing.assert_allclose(x.var(), bound**2 / 3, rtol=0.1)
        else:  # the 40 task weights: spread over most of the range, not a normal's narrow bulk
            assert np.abs(x).max() > 0.8 * bound and np.mean(np.abs(x) > bound / 2) > 0.3

    layers = params["experts"]["mlps"]
    for name, fan_in in (("dense_0", 39), ("dense_1", 400)):
        check_uniform(layers[name]["kernel"], 1 / np.sqrt(fan_in))
        check_uniform(layers[name]["bias"], 1 / np.sqrt(fan_in))
    check_uniform(params["task_weights"]["kernel"], np.sqrt(6 / (10 + 4)))
    check_uniform(params["heads"]["kernel"], np.sqrt(6 / (400 + 8)))
    check_uniform(params["heads"]["bias"], 1 / np.sqrt(400))
    # each expert is its own draw
    kernels = np.asarray(layers["dense_1"]["kernel"])
    assert not np.allclose(kernels[0], kernels[1])
    # flax's defaults behind the switch: zero biases
    flax = moore_sac.init(
        jax.random.key(0), spec, moore_sac.Config(hidden_sizes=(400, 400), authors_init=False)
    )
    assert not np.any(flax.actor_params["params"]["experts"]["mlps"]["dense_0"]["bias"])


def batch(seed: int = 0) -> Transition:
    right, _, task_id = observations(seed)
    rng = np.random.default_rng(seed + 1)
    return Transition(
        obs=right,
        action=rng.uniform(-1, 1, (right.shape[0], ACT)).astype(np.float32),
        reward=rng.normal(size=right.shape[0]).astype(np.float32),
        next_obs=observations(seed + 2)[0],
        terminated=np.zeros(right.shape[0], np.float32),
        task_id=task_id,
    )


def test_critic_only_updates_hold_actor_and_temperatures():
    config = moore_sac.Config(**SMALL["moore_sac"], critic_only_updates=2)
    state = jax.jit(functools.partial(moore_sac.init, spec=SPEC, config=config))(fast_key(0))
    update = jax.jit(moore_sac.update)
    first = state
    for i in range(3):
        new, metrics = update(state, batch(i), fast_key(i))
        critic_moved = not np.allclose(new.critic_params["params"]["heads"]["kernel"],
                                       state.critic_params["params"]["heads"]["kernel"])  # fmt: skip
        actor_moved = not np.allclose(new.actor_params["params"]["heads"]["kernel"],
                                      state.actor_params["params"]["heads"]["kernel"])  # fmt: skip
        assert critic_moved
        assert actor_moved == (i >= 2) and (not np.array_equal(new.log_alphas, state.log_alphas)) == (i >= 2)
        assert float(metrics["train/actor_active"]) == float(i >= 2)
        if i == 1:  # the held steps left the actor's and temperatures' optimisers untouched too
            for held, fresh in ((new.actor_opt_state, first.actor_opt_state),
                                (new.alpha_opt_state, first.alpha_opt_state)):  # fmt: skip
                for a, b in zip(jax.tree.leaves(held), jax.tree.leaves(fresh), strict=True):
                    np.testing.assert_array_equal(a, b)
        state = new


@functools.partial(jax.jit, static_argnames="config")
def critic_loss_under(state, batch, key, actor_params, log_alphas, config):
    """This step's critic loss, with the policy and temperatures given."""
    return losses.critic_loss(
        state.critic_params, batch, key, networks=state.networks, config=config, actor_params=actor_params,
        target_critic_params=state.target_critic_params, log_alphas=log_alphas,
    )[0]  # fmt: skip


@pytest.mark.parametrize("actor_first", [True, False])
def test_actor_first_order_uses_the_updated_policy_and_temperature_in_the_critic_target(actor_first):
    """With actor_first (the MOORE authors' mushroom-rl order) the critic's loss of this step is the loss
    under the *new* actor and temperatures; with the default order it is the loss under the old ones."""
    b, key = batch(), fast_key(3)
    critic_key, _ = jax.random.split(key)
    config = moore_sac.Config(**SMALL["moore_sac"], actor_first=actor_first)
    state = jax.jit(functools.partial(moore_sac.init, spec=SPEC, config=config))(fast_key(0))
    new, metrics = jax.jit(moore_sac.update)(state, b, key)
    assert not np.allclose(new.actor_params["params"]["heads"]["kernel"],
                           state.actor_params["params"]["heads"]["kernel"])  # fmt: skip
    updated = critic_loss_under(state, b, critic_key, new.actor_params, new.log_alphas, config)
    old = critic_loss_under(state, b, critic_key, state.actor_params, state.log_alphas, config)
    expected, other = (updated, old) if actor_first else (old, updated)
    np.testing.assert_allclose(metrics["train/critic_loss"], expected, rtol=1e-6)
    assert not np.isclose(float(metrics["train/critic_loss"]), float(other), rtol=1e-6)


def test_actor_first_with_task_weighting_is_refused():
    with pytest.raises(ValueError, match="actor_first=True cannot combine"):
        get_agent("paco_sac").Config(actor_first=True)


def test_moore_config_defaults_are_the_authors():
    c = moore_sac.Config()
    assert (c.one_hot_input, c.authors_init, c.actor_first, c.use_gram_schmidt) == (False, True, True, True)
    assert isinstance(c, sac.SACConfig)


# --- docs/fidelity.md is the source of truth for presets and agent defaults ---------------------------------

FIDELITY = Path(__file__).resolve().parents[1] / "docs" / "fidelity.md"
CHECKED = re.compile(r"^`?(?P<field>[a-z_]+(?:\.[a-z_]+)+)\s*=\s*(?P<value>.+?)`?$")


def fidelity_rows() -> list[tuple[str, str, str, str]]:
    """(scope, setting, field, literal) of every table row whose config cell names a field and value."""
    rows = []
    for line in FIDELITY.read_text().splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
        if len(cells) != 6 or cells[0] in ("scope", "") or set(cells[0]) <= {"-", ":"}:
            continue
        match = CHECKED.match(cells[4])
        if match:
            rows.append((cells[0].strip("`"), cells[1], match["field"], match["value"]))
    return rows


def configured_value(scope: str, field: str):
    if scope in PRESETS:
        value = get_preset(scope)
        for name in field.split("."):
            value = getattr(value, name)
        return value
    assert scope in AGENTS and field.startswith("agent."), f"unknown scope {scope!r} or field {field!r}"
    return getattr(get_agent(scope).Config(), field.removeprefix("agent."))


def test_fidelity_table_covers_every_preset():
    scopes = {row[0] for row in fidelity_rows()}
    assert set(PRESETS) <= scopes, sorted(set(PRESETS) - scopes)


@pytest.mark.parametrize("scope, setting, field, literal", fidelity_rows())
def test_presets_and_agents_match_the_fidelity_table(scope, setting, field, literal):
    value = configured_value(scope, field)
    expected = ast.literal_eval(literal)
    if isinstance(value, tuple):
        expected = tuple(expected)
    if isinstance(expected, float):
        expected = pytest.approx(expected, rel=1e-9)
    assert value == expected, f"{scope}: {setting}: {field} is {value!r}, docs/fidelity.md says {expected!r}"


def test_runs_written_before_the_fidelity_switches_keep_their_behaviour():
    """A config.json without the new SAC fields (a run trained before them) resumes and evaluates as trained:
    experts on state + one-hot, Flax init, critic-first updates, eq. 18's temperature loss."""
    from mtrl.app.config import TrainConfig, from_json, to_json

    data = to_json(TrainConfig(agent=moore_sac.Config()))
    for name in ("one_hot_input", "authors_init", "actor_first", "temperature_loss"):
        del data["agent"][name]
    old = from_json(data).agent
    assert (old.one_hot_input, old.authors_init, old.actor_first, old.temperature_loss) == (
        True,
        False,
        False,
        "alpha",
    )
    new = from_json(to_json(TrainConfig(agent=moore_sac.Config()))).agent
    assert new == moore_sac.Config()

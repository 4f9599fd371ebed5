"""MiniGrid PPO networks: shapes, parameter counts, init, orthogonality and task routing vs the authors'."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from mtrl.agents.minigrid_networks import MiniGridNetwork, intermediates

TASKS, EXPERTS, ACTIONS, BATCH = 3, 2, 7, 12


def images(batch: int = BATCH, seed: int = 0) -> jax.Array:
    """Random MiniGrid views, flattened from [7, 7, 3]: object 0..10, colour 0..5, state 0..2."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, [11, 6, 3], size=(batch, 7, 7, 3))
    return jnp.asarray(codes.reshape(batch, -1), jnp.float32)


TASK_ID = jnp.arange(BATCH, dtype=jnp.int32) % TASKS


def network(torso: str, heads: str, **kwargs) -> MiniGridNetwork:
    return MiniGridNetwork(TASKS, kwargs.pop("outputs", ACTIONS), torso, heads, EXPERTS, **kwargs)


@functools.cache
def params(torso: str, heads: str):
    """One init per parameter layout: "moe" shares MOORE's, so MOORE's parameters serve both."""
    return jax.jit(network(torso, heads).init)(jax.random.key(0), images(), TASK_ID)


@functools.cache
def forward(net: MiniGridNetwork):
    return jax.jit(net.apply)


@functools.cache
def inspect(net: MiniGridNetwork):
    return jax.jit(functools.partial(intermediates, net))


def conv_count(c_in: int, c_out: int) -> int:
    return 2 * 2 * c_in * c_out + c_out


CNN = conv_count(3, 16) + conv_count(16, 32) + conv_count(32, 64)  # 10,544


def head_count(inputs: int, outputs: int) -> int:
    """Linear(inputs→128) Tanh Linear(128→outputs), as in the authors' `_output_head(s)`."""
    return inputs * 128 + 128 + 128 * outputs + outputs


def authors_count(torso: str, heads: str, outputs: int) -> int:
    """Parameters of the authors' network, from its layer sizes (`networks_ppo.py`)."""
    torso_count = CNN if torso == "shared" else EXPERTS * CNN + TASKS * EXPERTS  # task encoder: no bias
    heads_count = TASKS * head_count(1024, outputs) if heads == "multi" else head_count(1024 + TASKS, outputs)
    return torso_count + heads_count


@pytest.mark.parametrize("heads", ["multi", "single"])
@pytest.mark.parametrize("torso", ["moore", "moe", "shared"])
@pytest.mark.parametrize("outputs", [ACTIONS, 1], ids=["actor", "critic"])
def test_shapes_and_parameter_counts_equal_the_authors(torso, heads, outputs):
    """Abstract evaluation only (no compilation): output shape, also with extra leading axes."""
    net = network(torso, heads, outputs=outputs)
    variables = jax.eval_shape(net.init, jax.random.key(0), images(), TASK_ID)
    count = sum(math.prod(x.shape) for x in jax.tree.leaves(variables))
    assert count == authors_count(torso, heads, outputs)
    assert jax.eval_shape(net.apply, variables, images(), TASK_ID).shape == (BATCH, outputs)
    leading = jax.eval_shape(net.apply, variables, images().reshape(3, 4, -1), TASK_ID.reshape(3, 4))
    assert leading.shape == (3, 4, outputs)


def test_moore_mt3_parameter_count_by_hand():
    """MOORE MT3, 2 experts, actor: 2·10,544 + 3·2 + 3·(1024·128 + 128 + 128·7 + 7) = 417,403."""
    assert authors_count("moore", "multi", ACTIONS) == 417_403
    assert jax.tree.map(jnp.shape, params("moore", "multi"))["params"]["task_weights"] == {
        "kernel": (TASKS, EXPERTS)
    }


def authors_orthogonal_layer(x: np.ndarray) -> np.ndarray:
    """The authors' `OrthogonalLayer1D` in float64 numpy: x [batch, k, d] → per-sample orthonormal rows."""
    basis = x[:, :1] / np.linalg.norm(x[:, :1], axis=-1, keepdims=True)
    for i in range(1, x.shape[1]):
        v = x[:, i : i + 1]
        w = v - (v @ basis.transpose(0, 2, 1)) @ basis
        basis = np.concatenate([basis, w / np.linalg.norm(w, axis=-1, keepdims=True)], axis=1)
    return basis


def test_moore_expert_features_are_orthonormal_per_sample_and_moe_are_not():
    moore, moe = network("moore", "multi"), network("moe", "multi")
    variables = params("moore", "multi")
    found = inspect(moore)(variables, images(), TASK_ID)
    raw = np.asarray(found["expert_outputs"], np.float64)
    features = np.asarray(found["expert_features"], np.float64)
    assert features.shape == (BATCH, EXPERTS, 1024)
    gram = features @ features.transpose(0, 2, 1)
    np.testing.assert_allclose(gram, np.broadcast_to(np.eye(EXPERTS), gram.shape), atol=1e-5)
    np.testing.assert_allclose(features, authors_orthogonal_layer(raw), atol=1e-5)

    moe_found = inspect(moe)(variables, images(), TASK_ID)
    assert "expert_features" not in moe_found
    np.testing.assert_array_equal(moe_found["expert_outputs"], found["expert_outputs"])
    raw_gram = raw @ raw.transpose(0, 2, 1)
    assert np.abs(raw_gram - np.eye(EXPERTS)).max() > 0.1  # MoE's raw experts: neither unit nor orthogonal


@pytest.mark.parametrize("torso", ["moore", "moe"])
def test_representation_is_tanh_of_task_weighted_experts_without_bias(torso):
    net = network(torso, "multi")
    variables = params("moore", "multi")
    found = inspect(net)(variables, images(), TASK_ID)
    experts = found["expert_features" if torso == "moore" else "expert_outputs"]
    assert set(variables["params"]["task_weights"]) == {"kernel"}  # bias=False in the authors' code
    weights = np.asarray(variables["params"]["task_weights"]["kernel"])[np.asarray(TASK_ID)]
    want = np.tanh(np.einsum("bk,bkd->bd", weights, np.asarray(experts, np.float64)))
    np.testing.assert_allclose(found["representation"], want, atol=1e-5)


def test_multi_head_rows_go_through_their_own_head_only():
    net = network("moore", "multi")
    variables = params("moore", "multi")
    out = np.asarray(forward(net)(variables, images(), TASK_ID))
    rep = np.asarray(inspect(net)(variables, images(), TASK_ID)["representation"], np.float64)
    h = {k: np.asarray(v, np.float64) for k, v in variables["params"]["heads"].items()}
    t = np.asarray(TASK_ID)
    hidden = np.tanh(np.einsum("bi,bih->bh", rep, h["hidden_kernel"][t]) + h["hidden_bias"][t])
    want = np.einsum("bh,bho->bo", hidden, h["out_kernel"][t]) + h["out_bias"][t]
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-5)

    for task in range(TASKS):  # perturbing head `task` changes exactly the rows of that task
        heads = dict(variables["params"]["heads"])
        heads["hidden_kernel"] = heads["hidden_kernel"].at[task].add(0.1)
        heads["out_bias"] = heads["out_bias"].at[task].add(1.0)
        perturbed = {"params": {**variables["params"], "heads": heads}}
        changed = np.any(np.asarray(forward(net)(perturbed, images(), TASK_ID)) != out, axis=-1)
        np.testing.assert_array_equal(changed, t == task)


def test_single_head_reads_the_task_only_through_the_one_hot():
    net = network("shared", "single")
    variables = params("shared", "single")
    p = {
        k: {n: np.asarray(a, np.float64) for n, a in variables["params"][k].items()}
        for k in ("hidden", "out")
    }
    assert p["hidden"]["kernel"].shape == (1024 + TASKS, 128)
    rep = np.asarray(inspect(net)(variables, images(), TASK_ID)["representation"], np.float64)
    one_hot = np.eye(TASKS)[np.asarray(TASK_ID)]
    hidden = np.tanh(np.concatenate([rep, one_hot], -1) @ p["hidden"]["kernel"] + p["hidden"]["bias"])
    want = hidden @ p["out"]["kernel"] + p["out"]["bias"]
    np.testing.assert_allclose(forward(net)(variables, images(), TASK_ID), want, rtol=1e-4, atol=1e-5)

    # Without the one-hot rows of the first kernel, the shared network no longer depends on the task.
    blind = {**variables["params"], "hidden": dict(variables["params"]["hidden"])}
    blind["hidden"]["kernel"] = blind["hidden"]["kernel"].at[1024:].set(0.0)
    outs = [forward(net)({"params": blind}, images(), jnp.full_like(TASK_ID, t)) for t in range(TASKS)]
    for other in outs[1:]:
        np.testing.assert_array_equal(other, outs[0])
    assert not np.allclose(
        forward(net)(variables, images(), 0 * TASK_ID), forward(net)(variables, images(), TASK_ID)
    )


def fan_ins(path: tuple[str, ...]) -> int:
    """PyTorch's fan-in of the layer owning a parameter (convolutions: in_channels · kh · kw)."""
    names = "/".join(path)
    for key, fan_in in (
        ("conv_0", 3 * 4),
        ("conv_1", 16 * 4),
        ("conv_2", 32 * 4),
        ("task_weights", TASKS),
        ("hidden_", 1024),
        ("out_", 128),
        ("hidden/", 1024 + TASKS),
        ("out/", 128),
    ):
        if key in names:
            return fan_in
    raise KeyError(names)


@pytest.mark.parametrize("layout", [("moore", "multi"), ("shared", "single")], ids="-".join)
def test_authors_init_is_uniform_fan_in_everywhere(layout):
    leaves = jax.tree_util.tree_leaves_with_path(params(*layout))
    assert len(leaves) == (10 if layout[0] == "shared" else 11)
    for path, value in leaves:
        keys = tuple(p.key for p in path)
        bound = 1 / math.sqrt(fan_ins(keys))
        value = np.asarray(value)
        assert np.all(np.abs(value) <= bound), keys
        if value.size >= 64:  # the largest of many U(±b) draws comes close to b
            assert np.abs(value).max() > 0.9 * bound, keys
        if keys[1] == "experts":  # each expert is initialised on its own
            assert not np.allclose(value[0], value[1]), keys


def test_flax_init_option_gives_zero_biases():
    variables = jax.eval_shape(
        network("moore", "multi", authors_init=False).init, jax.random.key(0), images(), TASK_ID
    )
    assert jax.tree.map(jnp.shape, variables) == jax.tree.map(jnp.shape, params("moore", "multi"))
    concrete = jax.jit(network("shared", "single", authors_init=False).init)(
        jax.random.key(0), images(), TASK_ID
    )
    biases = [v for p, v in jax.tree_util.tree_leaves_with_path(concrete) if p[-1].key == "bias"]
    assert len(biases) == 5 and all(np.all(np.asarray(b) == 0) for b in biases)


def test_patches_and_lax_convolutions_give_the_same_outputs_and_gradients():
    variables = params("moore", "multi")
    obs, task_id = images(), TASK_ID

    def loss(net, p):
        logits = net.apply(p, obs, task_id)
        return jnp.mean(jax.nn.logsumexp(logits, -1) - logits[:, 0])

    results = [
        jax.jit(jax.value_and_grad(functools.partial(loss, network("moore", "multi", conv=conv))))(variables)
        for conv in ("patches", "lax")
    ]
    (value, grads), (want_value, want_grads) = results
    np.testing.assert_allclose(value, want_value, rtol=1e-5)
    for got, want in zip(jax.tree.leaves(grads), jax.tree.leaves(want_grads), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6 * np.abs(want).max())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"torso": "mlp"}, r"torso='mlp' is not one of \('moore', 'moe', 'shared'\)"),
        ({"heads": "both"}, r"heads='both' is not one of \('multi', 'single'\)"),
        ({"conv": "fft"}, r"conv='fft' is not one of \('patches', 'lax'\)"),
        ({"num_experts": 0}, r"num_experts=0 must be between 1 and 1024"),
    ],
)
def test_rejects_bad_options_naming_the_value_and_the_choices(kwargs, message):
    options = {"num_tasks": TASKS, "outputs": ACTIONS, "torso": "moore", "heads": "multi", **kwargs}
    with pytest.raises(ValueError, match=message):
        MiniGridNetwork(**options)

"""Building blocks and torsos: Gram-Schmidt, stacked MLPs, per-task heads and MOORE routing."""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from mtrl.agents import mh_sac, moore_sac

from mtrl.networks import MLP, MultiHeadDense, StackedMLP, gram_schmidt

NUM_TASKS = 3


# Jitted init/apply: run eagerly, every Flax op would be dispatched (and compiled) on its own.
def init(module: nn.Module, *args, seed: int = 0):
    return jax.jit(module.init)(jax.random.key(seed, impl="rbg"), *args)


def apply(module: nn.Module, params, *args, **kwargs):
    return jax.jit(functools.partial(module.apply, **kwargs))(params, *args)


def qr_orthonormal(vectors: np.ndarray) -> np.ndarray:
    """Reference: rows of `vectors` [k, d] orthonormalised via QR, signs fixed so diag(R) > 0.

    Gram-Schmidt of the rows = Q of the QR factorisation of their transpose, diag(R) made positive.
    """
    q, r = np.linalg.qr(vectors.T.astype(np.float64))
    return (q * np.sign(np.diag(r))).T


def inputs(batch: int = 6, size: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=(batch, size)), jnp.float32)
    task_id = jnp.arange(batch, dtype=jnp.int32) % NUM_TASKS
    return x, task_id


def test_gram_schmidt_is_orthonormal_and_matches_qr():
    vectors = np.random.default_rng(0).normal(size=(7, 3, 5)).astype(np.float32)
    basis = np.asarray(gram_schmidt(jnp.asarray(vectors)))
    gram = np.einsum("bkd,bjd->bkj", basis, basis)
    np.testing.assert_allclose(gram, np.broadcast_to(np.eye(3), gram.shape), atol=1e-5)
    for sample, expected in zip(basis, vectors, strict=True):
        np.testing.assert_allclose(sample, qr_orthonormal(expected), atol=1e-5)


def test_gram_schmidt_guards_zero_and_dependent_rows():
    vectors = jnp.array([[[0.0, 0.0, 0.0], [1.0, 2.0, 2.0]], [[1.0, 0.0, 0.0], [3.0, 0.0, 0.0]]])
    basis = gram_schmidt(vectors)
    assert np.all(np.isfinite(basis))
    np.testing.assert_allclose(basis[0, 1], np.array([1.0, 2.0, 2.0]) / 3.0, atol=1e-6)
    np.testing.assert_allclose(basis[1, 1], 0.0, atol=1e-5)  # dependent row collapses to zero
    grads = jax.grad(lambda v: jnp.sum(gram_schmidt(v) ** 2))(vectors)
    assert np.all(np.isfinite(grads))


def test_mlp_stacked_members_are_independent_mlps():
    x, _ = inputs()
    stacked = StackedMLP(num=3, layer_sizes=(4, 2))
    params = init(stacked, x)
    out = apply(stacked, params, x)
    assert out.shape == (6, 3, 2)
    for i in range(3):
        member = jax.tree.map(lambda p, i=i: p[i], params["params"]["mlps"])
        np.testing.assert_allclose(out[:, i], apply(MLP((4, 2)), {"params": member}, x), rtol=1e-5, atol=1e-6)
    assert not np.allclose(out[:, 0], out[:, 1])


def test_multi_head_dense_uses_each_rows_head():
    x, task_id = inputs()
    heads = MultiHeadDense(num_heads=NUM_TASKS, features=2)
    params = init(heads, x, task_id)
    kernel = np.asarray(params["params"]["kernel"])
    bias = np.asarray(params["params"]["bias"])
    expected = np.stack([np.asarray(x)[b] @ kernel[t] + bias[t] for b, t in enumerate(task_id)])
    np.testing.assert_allclose(apply(heads, params, x, task_id), expected, rtol=1e-5, atol=1e-6)


def perturbed(params, path: tuple[str, ...], index: int):
    """`params` with `params[path][index]` shifted, everything else untouched."""
    leaf = params["params"]
    for name in path:
        leaf = leaf[name]
    new_leaf = leaf.at[index].add(0.5)

    def replace(tree, names):
        if not names:
            return new_leaf
        return {**tree, names[0]: replace(tree[names[0]], names[1:])}

    return {"params": replace(params["params"], path)}


def changed_rows(network: nn.Module, params, new_params, x, task_id) -> set[int]:
    run = jax.jit(network.apply)
    diff = np.abs(run(new_params, x, task_id) - run(params, x, task_id))
    return {int(t) for t in np.asarray(task_id)[diff.max(axis=1) > 1e-7]}


def moore_network(**overrides) -> moore_sac.Network:
    fields = dict(expert_sizes=(8, 4), num_experts=2, num_tasks=NUM_TASKS, output_size=2)
    return moore_sac.Network(**{**fields, **overrides})


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("mh", ("heads", "kernel")),
        ("moore", ("heads", "bias")),
        ("moore", ("task_weights", "kernel")),
    ],
)
def test_task_routing_touches_only_that_tasks_rows(name, path):
    network = mh_sac.Network((8, 8), 2, NUM_TASKS) if name == "mh" else moore_network()
    x, task_id = inputs()
    params = init(network, x, task_id, seed=1)
    for task in range(NUM_TASKS):
        new_params = perturbed(params, path, task)
        assert changed_rows(network, params, new_params, x, task_id) == {task}


@pytest.mark.parametrize("use_gram_schmidt", [True, False])
def test_moore_representation_matches_hand_computation(use_gram_schmidt):
    network = moore_network(use_gram_schmidt=use_gram_schmidt)
    x, task_id = inputs()
    params = init(network, x, task_id, seed=2)
    out, state = apply(network, params, x, task_id, mutable=["intermediates"])
    experts = np.asarray(state["intermediates"]["expert_outputs"][0], np.float64)  # [batch, k, d]
    representation = np.asarray(state["intermediates"]["representation"][0])
    p = jax.tree.map(np.asarray, params["params"])
    for b, t in enumerate(np.asarray(task_id)):
        # representation = tanh(sum_k w[t, k] * e_k), e = orthonormalised (or raw) expert rows.
        basis = qr_orthonormal(experts[b]) if use_gram_schmidt else experts[b]
        expected = np.tanh(p["task_weights"]["kernel"][t] @ basis)
        np.testing.assert_allclose(representation[b], expected, rtol=1e-4, atol=1e-5)
        head = representation[b] @ p["heads"]["kernel"][t] + p["heads"]["bias"][t]
        np.testing.assert_allclose(out[b], head, rtol=1e-4, atol=1e-5)


def test_moore_ablation_skips_gram_schmidt():
    x, task_id = inputs()
    params = init(moore_network(), x, task_id, seed=3)
    with_gs = apply(moore_network(), params, x, task_id)
    without_gs = apply(moore_network(use_gram_schmidt=False), params, x, task_id)
    assert not np.allclose(with_gs, without_gs, atol=1e-3)


def test_moore_refuses_more_experts_than_dimensions():
    x, task_id = inputs()
    with pytest.raises(ValueError, match="num_experts=5"):
        init(moore_network(num_experts=5), x, task_id)
    with pytest.raises(ValueError, match="num_experts=33"):
        moore_sac.Config(hidden_sizes=(32, 32), num_experts=33)

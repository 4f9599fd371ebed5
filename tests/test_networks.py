"""Building blocks and torsos: Gram-Schmidt, stacked MLPs, per-task heads and MOORE routing."""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import init
from mtrl.agents import mh_sac, moore_sac

from mtrl.networks import MLP, MultiHeadDense, StackedMLP, gram_schmidt

NUM_TASKS = 3


# Jitted apply (and init, from helpers): run eagerly, every Flax op would be dispatched (and compiled) on its
# own.
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
    cotangent = jnp.asarray(np.random.default_rng(1).normal(size=vectors.shape), jnp.float32)
    (grads,) = jax.vjp(gram_schmidt, vectors)[1](cotangent)
    assert np.all(np.isfinite(grads))


def central_difference_vjp(f, x: np.ndarray, cotangent: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """uᵀ ∂f/∂x for every element of x by central differences, ⟨u, f(x + h e_i) − f(x − h e_i)⟩ / 2h."""
    f = jax.jit(f)
    flat = x.ravel()
    out = np.empty_like(flat)
    for i in range(flat.size):
        step = np.zeros_like(flat)
        step[i] = h
        plus = np.asarray(f(jnp.asarray((flat + step).reshape(x.shape))))
        minus = np.asarray(f(jnp.asarray((flat - step).reshape(x.shape))))
        out[i] = np.vdot(cotangent, plus - minus) / (2 * h)
    return out.reshape(x.shape)


def vjp_error(f, x: np.ndarray, cotangent: np.ndarray) -> float:
    """Largest gap between jax's VJP and central differences, relative to the gradient's largest entry."""
    analytic = jax.jit(lambda v, u: jax.vjp(f, v)[1](u)[0])(jnp.asarray(x), jnp.asarray(cotangent))
    numeric = central_difference_vjp(f, x, cotangent)
    return float(np.abs(np.asarray(analytic) - numeric).max() / np.abs(numeric).max())


def test_gram_schmidt_vjp_matches_central_differences_for_a_random_cotangent():
    """Float64 VJP with a random cotangent u against central differences (h = 1e-6: truncation ~h², rounding
    ~1e-16/h, both far below the 1e-7 tolerance). A sum-of-outputs cotangent would hide errors here: the
    rows are normalised, so sum(GS(v)²) is the constant k and its gradient is 0 whatever the backward pass
    does. The same check on a Gram-Schmidt whose projection coefficients get no gradient fails clearly."""
    rng = np.random.default_rng(3)
    with jax.enable_x64(True):
        vectors = rng.normal(size=(2, 3, 5))
        cotangent = rng.normal(size=(2, 3, 5))
        assert jnp.asarray(vectors).dtype == jnp.float64
        assert vjp_error(gram_schmidt, vectors, cotangent) < 1e-7
        # the sum of squares is flat: its gradient says nothing about the backward pass
        flat = jax.grad(lambda v: jnp.sum(gram_schmidt(v) ** 2))(jnp.asarray(vectors))
        np.testing.assert_allclose(flat, 0.0, atol=1e-10)  # 0 up to the eps in the norm

        def no_projection_gradient(v):  # a plausible bug: the coefficients treated as constants
            basis = []
            for i in range(v.shape[-2]):
                w = v[..., i, :]
                if basis:
                    done = jnp.stack(basis, axis=-2)
                    c = jax.lax.stop_gradient(jnp.einsum("...d,...jd->...j", w, done))
                    w = w - jnp.einsum("...j,...jd->...d", c, done)
                basis.append(w / jnp.sqrt(jnp.sum(w * w, axis=-1, keepdims=True)))
            return jnp.stack(basis, axis=-2)

        np.testing.assert_allclose(no_projection_gradient(vectors), gram_schmidt(vectors), atol=1e-12)
        assert vjp_error(no_projection_gradient, vectors, cotangent) > 1e-2


def test_moore_network_vjp_matches_central_differences_for_a_random_cotangent():
    """The whole MOORE torso (experts, Gram-Schmidt, task weights, tanh, per-task heads) in float64: the VJP
    of a random cotangent w.r.t. the input, element by element, and w.r.t. all parameters along random
    directions d (uᵀ J d by central differences against ⟨VJP(u), d⟩), to a relative 1e-6."""
    rng = np.random.default_rng(4)
    network = moore_network(expert_sizes=(6, 4), num_experts=3)
    x32, task_id = inputs(batch=4, size=5)
    params32 = init(network, x32, task_id, seed=5)
    with jax.enable_x64(True):
        params = jax.tree.map(lambda p: jnp.asarray(np.asarray(p, np.float64)), params32)
        x = np.asarray(x32, np.float64)
        out = network.apply(params, jnp.asarray(x), task_id)
        assert out.dtype == jnp.float64
        cotangent = rng.normal(size=out.shape)
        assert vjp_error(lambda v: network.apply(params, v, task_id), x, cotangent) < 1e-6

        leaves, treedef = jax.tree.flatten(params)
        sizes = [leaf.size for leaf in leaves]
        flat_params = np.concatenate([np.ravel(leaf) for leaf in leaves])

        def of_flat(flat):
            pieces = jnp.split(flat, np.cumsum(sizes)[:-1])
            return jax.tree.unflatten(
                treedef, [p.reshape(leaf.shape) for p, leaf in zip(pieces, leaves, strict=True)]
            )

        f = jax.jit(lambda flat: network.apply(of_flat(flat), jnp.asarray(x), task_id))
        gradient = jax.jit(lambda p, u: jax.vjp(f, p)[1](u)[0])(
            jnp.asarray(flat_params), jnp.asarray(cotangent)
        )
        h = 1e-6
        for _ in range(4):
            d = rng.normal(size=flat_params.shape)
            plus, minus = f(jnp.asarray(flat_params + h * d)), f(jnp.asarray(flat_params - h * d))
            numeric = np.vdot(cotangent, np.asarray(plus) - np.asarray(minus)) / (2 * h)
            analytic = float(np.vdot(np.asarray(gradient), d))
            assert abs(analytic - numeric) <= 1e-6 * abs(numeric), (analytic, numeric)


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

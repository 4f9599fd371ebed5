"""`mtrl.conv`: the patch-matmul convolution equals XLA's convolution in values and gradients."""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtrl.conv import Conv2D, conv2d, conv2d_lax, conv2d_patches

# (batch shape, height, width, in channels, kernel h, kernel w, out channels)
SHAPES = [
    ((4,), 7, 7, 3, 2, 2, 16),
    ((2, 3), 6, 5, 4, 3, 2, 5),
    ((1,), 4, 4, 2, 1, 1, 3),
    ((5,), 5, 8, 1, 3, 3, 2),
]


def reference(x, kernel):
    """XLA's own convolution on a 4-D batch."""
    lead = x.shape[:-3]
    y = jax.lax.conv_general_dilated(
        x.reshape((-1, *x.shape[-3:])), kernel, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    return y.reshape((*lead, *y.shape[1:]))


def vjp_all(fn, x, kernel, cotangent):
    """Outputs and the gradients w.r.t. input and kernel of ⟨fn(x, kernel), cotangent⟩."""
    y, pullback = jax.vjp(fn, x, kernel)
    return (y, *pullback(cotangent))


def random_case(shape, seed):
    batch, h, w, c, kh, kw, o = shape
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=(*batch, h, w, c)), jnp.float32)
    kernel = jnp.asarray(rng.normal(size=(kh, kw, c, o)), jnp.float32)
    cotangent = jnp.asarray(rng.normal(size=(*batch, h - kh + 1, w - kw + 1, o)), jnp.float32)
    return x, kernel, cotangent


def assert_all_close(got, want):
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_patches_and_lax_match_xla_convolution_in_values_and_gradients(shape):
    x, kernel, cotangent = random_case(shape, seed=sum(shape[1:]))
    want = jax.jit(lambda *a: vjp_all(reference, *a))(x, kernel, cotangent)
    for fn in (conv2d_patches, conv2d_lax):
        assert_all_close(jax.jit(lambda *a, fn=fn: vjp_all(fn, *a))(x, kernel, cotangent), want)


@pytest.mark.parametrize("shared_input", [True, False], ids=["shared-input", "own-input"])
def test_stacked_experts_under_vmap_match_per_expert_convolutions(shared_input):
    """k experts' kernels stacked on a leading axis and vmapped, as in the MOORE CNN experts."""
    experts, batch, shape = 3, (6,), (7, 7, 3, 2, 2, 8)
    rng = np.random.default_rng(1)
    x = jnp.asarray(
        rng.normal(size=((*batch, *shape[:3]) if shared_input else (experts, *batch, *shape[:3])))
    )
    x = x.astype(jnp.float32)
    kernels = jnp.asarray(rng.normal(size=(experts, *shape[3:5], shape[2], shape[5])), jnp.float32)
    cotangent = jnp.asarray(rng.normal(size=(experts, *batch, 6, 6, shape[5])), jnp.float32)
    in_axes = (None, 0) if shared_input else (0, 0)
    for implementation in ("patches", "lax"):
        stacked = jax.vmap(lambda a, k, i=implementation: conv2d(a, k, i), in_axes=in_axes)
        y, dx, dk = jax.jit(lambda *a, f=stacked: vjp_all(f, *a))(x, kernels, cotangent)
        for e in range(experts):
            xe = x if shared_input else x[e]
            ye, dxe, dke = vjp_all(reference, xe, kernels[e], cotangent[e])
            assert_all_close((y[e], dk[e]), (ye, dke))
            if not shared_input:
                assert_all_close((dx[e],), (dxe,))
        if shared_input:  # the shared input's gradient sums over the experts
            want = sum(vjp_all(reference, x, kernels[e], cotangent[e])[1] for e in range(experts))
            assert_all_close((dx,), (want,))


@pytest.mark.parametrize("implementation", ["patches", "lax"])
def test_module_equals_flax_conv_with_the_same_weights(implementation):
    """Same parameter tree as `nn.Conv(padding="VALID")`; same outputs and gradients with it."""
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.normal(size=(5, 7, 7, 3)), jnp.float32)
    ours = Conv2D(16, (2, 2), torch_init=True, implementation=implementation)
    flax_conv = nn.Conv(16, (2, 2), padding="VALID")
    params = jax.jit(ours.init)(jax.random.key(0), x)
    assert jax.tree.structure(params) == jax.tree.structure(jax.jit(flax_conv.init)(jax.random.key(0), x))
    assert jax.tree.map(jnp.shape, params) == {"params": {"kernel": (2, 2, 3, 16), "bias": (16,)}}

    def loss(module, p, inputs):
        return jnp.sum(jnp.sin(module.apply(p, inputs)))

    grad = lambda m: jax.jit(jax.value_and_grad(lambda p, a: loss(m, p, a), argnums=(0, 1)))
    (value, (dp, dx)), (want_value, (want_dp, want_dx)) = grad(ours)(params, x), grad(flax_conv)(params, x)
    np.testing.assert_allclose(value, want_value, rtol=1e-5)
    assert_all_close(jax.tree.leaves((dp, dx)), jax.tree.leaves((want_dp, want_dx)))


def test_torch_init_is_uniform_fan_in_and_default_is_flax():
    x = jnp.zeros((1, 7, 7, 16))
    fan_in = 2 * 2 * 16  # in_channels · kh · kw, as PyTorch's nn.Conv2d
    bound = 1 / math.sqrt(fan_in)
    torch_like = jax.jit(Conv2D(256, (2, 2), torch_init=True).init)(jax.random.key(0), x)["params"]
    for name in ("kernel", "bias"):
        values = np.asarray(torch_like[name])
        assert np.all(np.abs(values) <= bound)
        assert np.abs(values).max() > 0.95 * bound
        if name == "kernel":  # U(±b) has standard deviation b/√3
            np.testing.assert_allclose(values.std(), bound / math.sqrt(3), rtol=0.03)
    flax_like = jax.jit(Conv2D(256, (2, 2)).init)(jax.random.key(0), x)["params"]
    assert np.all(np.asarray(flax_like["bias"]) == 0)
    np.testing.assert_allclose(np.asarray(flax_like["kernel"]).std(), 1 / math.sqrt(fan_in), rtol=0.05)


def test_rejects_an_unknown_implementation():
    with pytest.raises(ValueError, match=r"'fft' is not one of \('patches', 'lax'\)"):
        Conv2D(4, (2, 2), implementation="fft")
    with pytest.raises(ValueError, match="'fft'"):
        conv2d(jnp.zeros((1, 3, 3, 1)), jnp.zeros((2, 2, 1, 1)), "fft")

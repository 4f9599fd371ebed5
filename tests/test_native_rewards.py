"""The JAX reward vocabulary of the native backend against metaworld's own NumPy `reward_utils` and scipy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from metaworld.utils import reward_utils
from mtrl.envs.metaworld.native import rewards
from scipy.spatial.transform import Rotation


def f32(x, avoid=()):
    """Float32-representable test points, none within float32 rounding of a bound in `avoid`.

    A bound such as 0.05 is itself rounded in float32, so a point within ~1e-9 of it can fall on
    different sides in float32 and float64; real trajectories land there with negligible probability.
    """
    x = np.asarray(x, np.float32).astype(np.float64)
    for bound in avoid:
        x = x[np.abs(x - bound) > 1e-6]
    return x


SIGMOIDS = [
    "gaussian",
    "hyperbolic",
    "long_tail",
    "reciprocal",
    "cosine",
    "linear",
    "quadratic",
    "tanh_squared",
]


@pytest.mark.parametrize("sigmoid", SIGMOIDS)
@pytest.mark.parametrize("bounds", [(0.0, 0.0), (0.0, 0.05), (0.015, 0.05), (-0.1, 0.2)])
def test_tolerance_matches_metaworld(sigmoid, bounds):
    x = f32(np.linspace(-1.0, 1.0, 401), avoid=bounds)
    for margin in (0.0, 0.03, 0.5):
        expected = np.array([reward_utils.tolerance(v, bounds, margin, sigmoid) for v in x])
        ours = rewards.tolerance(jnp.asarray(x, jnp.float32), bounds, margin, sigmoid)
        np.testing.assert_allclose(ours, expected, atol=2e-6, err_msg=f"margin={margin}")


def test_tolerance_takes_a_margin_per_env_and_never_leaks_nan_from_zero_margins():
    x = jnp.array([0.2, 0.2, 0.01])
    margin = jnp.array([0.0, 0.5, 0.0])
    value = rewards.tolerance(x, (0, 0.05), margin, "long_tail")
    expected = [reward_utils.tolerance(0.2, (0, 0.05), m, "long_tail") for m in (0.0, 0.5)] + [1.0]
    np.testing.assert_allclose(value, expected, atol=1e-7)
    grad = jax.grad(lambda m: rewards.tolerance(x, (0, 0.05), m, "long_tail").sum())(margin)
    assert np.isfinite(grad).all()


def test_hamacher_product_matches_metaworld_including_zero_denominator():
    grid = f32(np.linspace(0.0, 1.0, 21))
    a, b = np.meshgrid(grid, grid)
    expected = np.vectorize(reward_utils.hamacher_product, otypes=[float])(a, b)
    np.testing.assert_allclose(rewards.hamacher_product(jnp.asarray(a), jnp.asarray(b)), expected, atol=1e-6)
    assert float(rewards.hamacher_product(0.0, 0.0)) == 0.0


def test_rect_prism_tolerance_matches_metaworld():
    rng = np.random.default_rng(0)
    zero, one = np.array([0.0, 0.6, 0.0]), np.array([0.2, 0.8, 0.3])
    for corners in ((zero, one), (one, zero)):
        points = f32(rng.uniform(-0.1, 0.9, (200, 3)))
        expected = [reward_utils.rect_prism_tolerance(p, *corners) for p in points]
        ours = rewards.rect_prism_tolerance(jnp.asarray(points), *map(jnp.asarray, corners))
        np.testing.assert_allclose(ours, expected, atol=1e-6)


def test_quat_from_matrix_matches_scipy_in_every_case_of_its_formula():
    rng = np.random.default_rng(0)
    quats = rng.standard_normal((500, 4))
    # rotations near the identity and half-turns about each axis exercise all four branches
    quats[:50] = [0, 0, 0, 1] + 1e-3 * rng.standard_normal((50, 4))
    for axis in range(3):
        quats[50 + 50 * axis : 100 + 50 * axis] = np.eye(4)[axis] + 1e-3 * rng.standard_normal((50, 4))
    mats = Rotation.from_quat(quats).as_matrix()
    expected = Rotation.from_matrix(mats).as_quat()
    ours = rewards.quat_from_matrix(jnp.asarray(mats.reshape(-1, 9), jnp.float32))
    np.testing.assert_allclose(ours, expected, atol=2e-6)
    decision = np.concatenate(
        [np.diagonal(mats, axis1=1, axis2=2), np.trace(mats, axis1=1, axis2=2)[:, None]], 1
    )
    assert set(np.argmax(decision, axis=1)) == {0, 1, 2, 3}

"""Meta-World's reward vocabulary (`metaworld.utils.reward_utils`) as batched `jax.numpy` functions.

Every function takes arrays whose leading axis is the env batch and returns one value per env;
scalars broadcast. Branches on values become `jnp.where`, so the same code traces once for all envs
and runs unchanged on any JAX device. Behaviour matches metaworld's float64 NumPy code up to float32
rounding, including its edge cases (zero margin, zero Hamacher denominator).
"""

from __future__ import annotations

import math

import jax.numpy as jnp

_VALUE_AT_MARGIN = 0.1  # metaworld's default: tolerance() is 0.1 at `margin` beyond the bounds


def norm(x):
    """Euclidean norm over the last axis."""
    return jnp.sqrt(jnp.sum(jnp.square(x), axis=-1))


def _sigmoid(d, value_at_1: float, sigmoid: str):
    """Map a distance in margins (d >= 0) to (0, 1]; 1 at d = 0 and `value_at_1` at d = 1."""
    if sigmoid == "long_tail":
        scale = math.sqrt(1 / value_at_1 - 1)
        return 1 / ((d * scale) ** 2 + 1)
    if sigmoid == "gaussian":
        scale = math.sqrt(-2 * math.log(value_at_1))
        return jnp.exp(-0.5 * (d * scale) ** 2)
    if sigmoid == "reciprocal":
        scale = 1 / value_at_1 - 1
        return 1 / (jnp.abs(d) * scale + 1)
    if sigmoid == "hyperbolic":
        scale = math.acosh(1 / value_at_1)
        return 1 / jnp.cosh(d * scale)
    if sigmoid == "tanh_squared":
        scale = math.atanh(math.sqrt(1 - value_at_1))
        return 1 - jnp.tanh(d * scale) ** 2
    if sigmoid == "linear":
        scaled = d * (1 - value_at_1)
        return jnp.where(jnp.abs(scaled) < 1, 1 - scaled, 0.0)
    if sigmoid == "quadratic":
        scaled = d * math.sqrt(1 - value_at_1)
        return jnp.where(jnp.abs(scaled) < 1, 1 - scaled**2, 0.0)
    if sigmoid == "cosine":
        scaled = d * math.acos(2 * value_at_1 - 1) / math.pi
        return jnp.where(jnp.abs(scaled) < 1, (1 + jnp.cos(math.pi * scaled)) / 2, 0.0)
    raise ValueError(f"unknown sigmoid {sigmoid!r}")


def tolerance(x, bounds=(0.0, 0.0), margin=0.0, sigmoid="gaussian", value_at_margin=_VALUE_AT_MARGIN):
    """1 inside `bounds`, falling off over `margin` outside; `margin` may differ per env.

    As in metaworld, a zero margin gives 0 outside the bounds. The division by a zero margin is
    computed but never selected; it is guarded so that no NaN can leak into gradients or logs.
    """
    lower, upper = bounds
    x = jnp.asarray(x)
    margin = jnp.asarray(margin, x.dtype)
    in_bounds = (lower <= x) & (x <= upper)
    safe_margin = jnp.where(margin == 0, 1.0, margin)
    d = jnp.where(x < lower, lower - x, x - upper) / safe_margin
    outside = jnp.where(margin == 0, 0.0, _sigmoid(d, value_at_margin, sigmoid))
    return jnp.where(in_bounds, 1.0, outside)


def hamacher_product(a, b):
    """The Hamacher t-norm a*b / (a + b - a*b), 0 where the denominator is 0."""
    denominator = a + b - a * b
    safe = jnp.where(denominator > 0, denominator, 1.0)
    return jnp.where(denominator > 0, a * b / safe, 0.0)


def rect_prism_tolerance(curr, zero, one):
    """Product of the per-axis fractions from `zero` to `one` inside the prism; 1.0 outside it."""
    low = jnp.minimum(zero, one)
    high = jnp.maximum(zero, one)
    inside = jnp.all((low <= curr) & (curr <= high), axis=-1)
    fractions = (curr - zero) / (one - zero)
    return jnp.where(inside, jnp.prod(fractions, axis=-1), 1.0)


def quat_from_matrix(mat):
    """Unit quaternions (x, y, z, w) from row-major rotation matrices [..., 9].

    The same case split as `scipy.spatial.transform.Rotation.from_matrix(...).as_quat()`, which
    metaworld uses for object orientations, so the sign convention matches too: the largest of
    (m00, m11, m22, trace) picks the formula.
    """
    m = mat.reshape(*mat.shape[:-1], 3, 3)
    trace = m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2]
    decision = jnp.stack([m[..., 0, 0], m[..., 1, 1], m[..., 2, 2], trace], axis=-1)
    choice = jnp.argmax(decision, axis=-1)[..., None]
    cases = [
        [
            1 - trace + 2 * m[..., 0, 0],
            m[..., 1, 0] + m[..., 0, 1],
            m[..., 2, 0] + m[..., 0, 2],
            m[..., 2, 1] - m[..., 1, 2],
        ],
        [
            m[..., 1, 0] + m[..., 0, 1],
            1 - trace + 2 * m[..., 1, 1],
            m[..., 2, 1] + m[..., 1, 2],
            m[..., 0, 2] - m[..., 2, 0],
        ],
        [
            m[..., 2, 0] + m[..., 0, 2],
            m[..., 2, 1] + m[..., 1, 2],
            1 - trace + 2 * m[..., 2, 2],
            m[..., 1, 0] - m[..., 0, 1],
        ],
        [m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1], 1 + trace],
    ]
    quat = jnp.stack(cases[3], axis=-1)
    for i in range(3):
        quat = jnp.where(choice == i, jnp.stack(cases[i], axis=-1), quat)
    return quat / norm(quat)[..., None]


def gripper_caging_reward(
    frame,
    consts,
    action,
    obj_pos,
    *,
    obj_radius: float,
    pad_success_thresh: float,
    object_reach_radius: float,
    xz_thresh: float,
    desired_gripper_effort: float = 1.0,
    high_density: bool = False,
    medium_density: bool = False,
):
    """`SawyerXYZEnv._gripper_caging_reward`: pads caging the object in y, tcp near it in x-z, closed.

    Reads `frame.left_pad`, `frame.right_pad`, `frame.tcp` and `consts.obj_init_pos`,
    `consts.init_tcp` (declare `obj_init_pos` among the task's constants).
    """
    if high_density and medium_density:
        raise ValueError("Can only be either high_density or medium_density")
    obj_init_pos, init_tcp = consts.obj_init_pos, consts.init_tcp
    pad_y = jnp.stack([frame.left_pad[:, 1], frame.right_pad[:, 1]], axis=-1)
    pad_to_obj = jnp.abs(pad_y - obj_pos[:, 1:2])
    pad_to_obj_init = jnp.abs(pad_y - obj_init_pos[:, 1:2])
    caging_margin = jnp.abs(pad_to_obj_init - pad_success_thresh)
    caging_lr = [
        tolerance(
            pad_to_obj[:, i],
            bounds=(obj_radius, pad_success_thresh),
            margin=caging_margin[:, i],
            sigmoid="long_tail",
        )
        for i in range(2)
    ]
    caging_y = hamacher_product(*caging_lr)

    xz = jnp.array([0, 2])
    xz_margin = norm(obj_init_pos[:, xz] - init_tcp[:, xz]) - xz_thresh
    caging_xz = tolerance(
        norm(frame.tcp[:, xz] - obj_pos[:, xz]),
        bounds=(0, xz_thresh),
        margin=xz_margin,
        sigmoid="long_tail",
    )
    gripper_closed = (
        jnp.minimum(jnp.maximum(0, action[:, -1]), desired_gripper_effort) / desired_gripper_effort
    )
    caging = hamacher_product(caging_y, caging_xz)
    gripping = jnp.where(caging > 0.97, gripper_closed, 0.0)
    caging_and_gripping = hamacher_product(caging, gripping)
    if high_density:
        caging_and_gripping = (caging_and_gripping + caging) / 2
    if medium_density:
        tcp_to_obj = norm(obj_pos - frame.tcp)
        tcp_to_obj_init = norm(obj_init_pos - init_tcp)
        reach = tolerance(
            tcp_to_obj,
            bounds=(0, object_reach_radius),
            margin=jnp.abs(tcp_to_obj_init - object_reach_radius),
            sigmoid="long_tail",
        )
        caging_and_gripping = (caging_and_gripping + reach) / 2
    return caging_and_gripping

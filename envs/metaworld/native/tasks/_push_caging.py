"""The push-style `_gripper_caging_reward` that sweep, sweep-into and soccer override the base one with.

Those three envs replace the base class's caging reward with the same push-style variant, differing
only in two margins. The object is "caged" when the pads straddle it in y and the tcp is over it in
x-z; the reward averages caging with a tighter "gripping" term that only counts once caging > 0.95.
The gripper effort (`action[-1]`) does not enter it.
"""

import jax.numpy as jnp

from ..rewards import hamacher_product, norm, tolerance

PAD_SUCCESS_MARGIN = 0.05
XZ = jnp.array([0, 2])


def _pad_terms(delta, margin, obj_radius: float, upper: float):
    return tolerance(delta, bounds=(obj_radius, upper), margin=margin, sigmoid="long_tail")


def push_caging_reward(
    frame, consts, obj_pos, *, obj_radius: float, grip_slack: float, xz_success_margin: float
):
    """The sweep/soccer `_gripper_caging_reward`, gripping counting pads within `obj_radius + grip_slack`.

    Metaworld's `init_left_pad`/`init_right_pad` alias the current pads, so the margins use
    `frame.left_pad`/`frame.right_pad`. Reads `consts.obj_init_pos` and `consts.init_tcp`.
    """
    obj_y = obj_pos[:, 1]
    left_delta = frame.left_pad[:, 1] - obj_y
    right_delta = obj_y - frame.right_pad[:, 1]
    left_margin = jnp.abs(jnp.abs(obj_y - frame.left_pad[:, 1]) - PAD_SUCCESS_MARGIN)
    right_margin = jnp.abs(jnp.abs(obj_y - frame.right_pad[:, 1]) - PAD_SUCCESS_MARGIN)

    grip_upper = obj_radius + grip_slack
    y_caging = hamacher_product(
        _pad_terms(right_delta, right_margin, obj_radius, PAD_SUCCESS_MARGIN),
        _pad_terms(left_delta, left_margin, obj_radius, PAD_SUCCESS_MARGIN),
    )
    y_gripping = hamacher_product(
        _pad_terms(right_delta, right_margin, obj_radius, grip_upper),
        _pad_terms(left_delta, left_margin, obj_radius, grip_upper),
    )

    xz_margin = norm(consts.obj_init_pos[:, XZ] - consts.init_tcp[:, XZ]) - xz_success_margin
    xz_caging = tolerance(
        norm(frame.tcp[:, XZ] - obj_pos[:, XZ]),
        bounds=(0, xz_success_margin),
        margin=xz_margin,
        sigmoid="long_tail",
    )
    caging = hamacher_product(y_caging, xz_caging)
    gripping = jnp.where(caging > 0.95, y_gripping, 0.0)
    return (caging + gripping) / 2

"""Reads, constants and reward terms of the button ports and the coffee-mug ports.

button-press, -topdown, -topdown-wall, -wall and coffee-button all press a button on a slide joint
along one world axis, and metaworld computes their press depth and reach terms the same way;
coffee-pull and coffee-push move the same mug with one shared reward. Each family's math lives here
once, and each task module keeps only its own margins and gates.
"""

import jax.numpy as jnp

from ..port import Constant, Read, attribute
from ..rewards import gripper_caging_reward, hamacher_product, norm, quat_from_matrix, tolerance

# button-press*, coffee-button: a button on a slide joint, pressed along one world axis (z top-down, y from
# the front). Its press depth is rebuilt from the joint, not from the observed position: see `press_depth`.
BUTTON_READS = {
    "button": Read("body_pos", "button"),
    "button_quat": Read("body_quat", "button"),
    "press_q": Read("qpos", "btnbox_joint"),
}


def press_constants(axis: int, joint: str) -> dict:
    """The goal's signed distance ahead of the observed button along `axis` when `joint` is at 0, and the
    joint's world axis component along `axis`, both taken in float64 on the host after reset."""

    def gap_at_zero(env):
        along = env.data.joint(joint).xaxis[axis]
        return env._target_pos[axis] - env._get_pos_objects()[axis] + along * env.data.joint(joint).qpos[0]

    return {
        "press_gap": Constant(1, gap_at_zero),
        "press_axis": Constant(1, lambda env: env.data.joint(joint).xaxis[axis]),
    }


def button_constants(axis: int) -> dict:
    """The button-press* constants: the press geometry and `_obj_to_target_init` (a float set at reset)."""
    return {
        "obj_to_target_init": attribute("_obj_to_target_init", 1),
        **press_constants(axis, "btnbox_joint"),
    }


def button_objects(tip_offset):
    """`_get_pos_objects` / `_get_quat_objects` for a button whose tip is `tip_offset` from its body."""
    offset = jnp.array(tip_offset, jnp.float32)

    def objects(frame):
        return frame.button + offset, frame.button_quat

    return objects


def press_depth(frame, consts):
    """metaworld's `obj_to_target`: |target - observed button| along the press axis.

    The button moves along its slide joint, so that difference is `gap - axis * q` exactly. Taking it
    from float32 positions near 0.8 m instead would lose up to ~1e-7 m to rounding, which the steep
    `button_pressed` term (margins of 3-10 cm) amplifies to ~1e-5 in the reward.
    """
    return jnp.abs(consts.press_gap[:, 0] - consts.press_axis[:, 0] * frame.press_q[:, 0])


def button_terms(frame, consts, obs, *, near_bound: float, press_margin):
    """The terms every button reward shares.

    Returns tcp_to_obj, obj_to_target (press depth still to go), near_button (reaching the observed
    button; its margin is measured from the *current* button to the initial tcp, as metaworld does)
    and button_pressed.
    """
    obj = obs[:, 4:7]
    tcp_to_obj = norm(obj - frame.tcp)
    tcp_to_obj_init = norm(obj - consts.init_tcp)
    obj_to_target = press_depth(frame, consts)
    near_button = tolerance(tcp_to_obj, bounds=(0, near_bound), margin=tcp_to_obj_init, sigmoid="long_tail")
    button_pressed = tolerance(obj_to_target, bounds=(0, 0.005), margin=press_margin, sigmoid="long_tail")
    return tcp_to_obj, obj_to_target, near_button, button_pressed


def button_reward(tcp_closed, near_button, button_pressed, tcp_to_obj, *, reach_gate, grip_weight):
    """Reach with the gripper in the wanted state, plus the press once the tcp is within `reach_gate`."""
    press_weight = 10 - grip_weight
    reward = grip_weight * hamacher_product(tcp_closed, near_button)
    return jnp.where(tcp_to_obj <= reach_gate, reward + press_weight * button_pressed, reward)


# coffee-pull / coffee-push: the mug (`obj` body, oriented by the `mug` geom) moved to the goal.
MUG_READS = {"mug": Read("body_pos", "obj"), "mug_mat": Read("geom_mat", "mug")}
MUG_CONSTANTS = {"obj_init_pos": attribute("obj_init_pos")}  # a fresh array from the reset's random vector


def mug_objects(frame):
    return frame.mug, quat_from_matrix(frame.mug_mat)


def mug_reward(frame, consts, obs, action):
    """Both mug tasks: grasp the mug (base-class caging, medium density) and bring it to the goal.

    x and y errors count double in the placing term; success is the plain distance within 7 cm.
    """
    obj, tcp_opened, target = obs[:, 4:7], obs[:, 3], consts.target_pos
    scale = jnp.array([2.0, 2.0, 1.0])
    target_to_obj = norm((obj - target) * scale)
    target_to_obj_init = norm((consts.obj_init_pos - target) * scale)
    in_place = tolerance(target_to_obj, bounds=(0, 0.05), margin=target_to_obj_init, sigmoid="long_tail")
    tcp_to_obj = norm(obj - frame.tcp)
    object_grasped = gripper_caging_reward(
        frame,
        consts,
        action,
        obj,
        obj_radius=0.02,
        pad_success_thresh=0.05,
        object_reach_radius=0.04,
        xz_thresh=0.05,
        desired_gripper_effort=0.7,
        medium_density=True,
    )
    reward = hamacher_product(object_grasped, in_place)
    reward = jnp.where((tcp_to_obj < 0.04) & (tcp_opened > 0), reward + 1.0 + 5.0 * in_place, reward)
    reward = jnp.where(target_to_obj < 0.05, 10.0, reward)
    return reward, norm(obj - target) <= 0.07

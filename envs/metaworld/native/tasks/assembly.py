"""assembly-v3 (`SawyerNutAssemblyEnvV3`): carry the wrench (round nut) over the peg and lower it on.

Success: the nut's center is within 2 cm of the peg top in x-y and below it.
"""

import jax.numpy as jnp

from ..port import Read, TaskPort, attribute
from ..rewards import gripper_caging_reward, norm
from ._wrench_hammer_stick import lift_and_place, quat_reward, snap_x_to_hand

WRENCH_HANDLE_LENGTH = 0.02
IDEAL_QUAT = (0.707, 0.0, 0.0, 0.707)  # the wrench lying flat


def objects(frame):
    return frame.nut_grip, frame.nut_quat


def in_place_reward(wrench_center, target):
    """`_reward_pos`: a funnel over the peg whose target height drops as the nut nears the peg's axis."""
    pos_error = target - wrench_center
    radius = norm(pos_error[:, :2])
    success = (radius < 0.02) & (pos_error[:, 2] > 0.0)
    threshold = jnp.where(success, 0.02, 0.01)
    outside = radius > threshold
    safe_gap = jnp.where(outside, radius - threshold, 1.0)
    target_height = jnp.where(outside, 0.02 * jnp.log(safe_gap) + 0.2, 0.0)
    scaled_error = jnp.stack(
        [pos_error[:, 0], pos_error[:, 1], 3.0 * (target_height - wrench_center[:, 2])], axis=1
    )
    lifted = (wrench_center[:, 2] > 0.02) | (radius < threshold)
    return lift_and_place(lifted, norm(scaled_error), margin=0.4), success


def reward(frame, consts, obs, action):
    hand, wrench = obs[:, :3], obs[:, 4:7]
    wrench_threshed = snap_x_to_hand(wrench, hand, WRENCH_HANDLE_LENGTH / 2)
    reward_quat = quat_reward(obs, IDEAL_QUAT)
    reward_grab = gripper_caging_reward(
        frame,
        consts,
        action,
        wrench_threshed,
        object_reach_radius=0.01,
        obj_radius=0.015,
        pad_success_thresh=0.02,
        xz_thresh=0.01,
        medium_density=True,
    )
    reward_in_place, success = in_place_reward(frame.nut_center, consts.target_pos)
    reward = (2.0 * reward_grab + 6.0 * reward_in_place) * reward_quat
    return jnp.where(success, 10.0, reward), success


PORT = TaskPort(
    reads={
        "nut_grip": Read("site_pos", "RoundNut-8"),
        "nut_center": Read("site_pos", "RoundNut"),
        "nut_quat": Read("body_quat", "RoundNut"),
    },
    constants={"obj_init_pos": attribute("obj_init_pos")},
    objects=objects,
    reward=reward,
)

"""disassemble-v3 (`SawyerNutDisassembleEnvV3`): lift the wrench (round nut) up and off the peg.

Success: the observed nut grip point is higher than the goal (15 cm above the nut's start).
"""

import jax.numpy as jnp

from ..port import Read, TaskPort, attribute
from ..rewards import gripper_caging_reward, norm
from ._wrench_hammer_stick import lift_and_place, quat_reward, snap_x_to_hand

WRENCH_HANDLE_LENGTH = 0.02
IDEAL_QUAT = (0.707, 0.0, 0.0, 0.707)  # the wrench lying flat
ABOVE_TARGET = jnp.array([0.0, 0.0, 0.1])


def objects(frame):
    return frame.nut_grip, frame.nut_quat


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
        high_density=True,
    )
    wrench_center = frame.nut_center
    pos_error = consts.target_pos + ABOVE_TARGET - wrench_center
    reward_in_place = lift_and_place(wrench_center[:, 2] > 0.02, norm(pos_error), margin=0.2)
    reward = (2.0 * reward_grab + 6.0 * reward_in_place) * reward_quat
    success = obs[:, 6] > consts.target_pos[:, 2]
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

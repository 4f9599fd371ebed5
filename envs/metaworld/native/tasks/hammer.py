"""hammer-v3 (`SawyerHammerEnvV3`): pick up the hammer and drive the nail into the box.

Success: the nail's slide joint is pushed in by more than 9 cm.
"""

import jax.numpy as jnp

from ..port import Read, TaskPort, attribute
from ..rewards import gripper_caging_reward, norm
from ._wrench_hammer_stick import lift_and_place, quat_reward, snap_x_to_hand

HAMMER_HANDLE_LENGTH = 0.14
IDEAL_QUAT = (1.0, 0.0, 0.0, 0.0)  # the hammer lying as it starts
HEAD_OFFSET = jnp.array([0.16, 0.06, 0.0])  # hammer head relative to the hammer body


def objects(frame):
    return (
        jnp.concatenate([frame.hammer, frame.nail], axis=1),
        jnp.concatenate([frame.hammer_quat, frame.nail_quat], axis=1),
    )


def reward(frame, consts, obs, action):
    hand, hammer = obs[:, :3], obs[:, 4:7]
    hammer_head = hammer + HEAD_OFFSET
    hammer_threshed = snap_x_to_hand(hammer, hand, HAMMER_HANDLE_LENGTH / 2)
    reward_quat = quat_reward(obs, IDEAL_QUAT)
    reward_grab = gripper_caging_reward(
        frame,
        consts,
        action,
        hammer_threshed,
        object_reach_radius=0.01,
        obj_radius=0.015,
        pad_success_thresh=0.02,
        xz_thresh=0.01,
        high_density=True,
    )
    head_error = norm(consts.target_pos - hammer_head)
    reward_in_place = lift_and_place(hammer_head[:, 2] > 0.02, head_error, margin=0.2)
    reward = (2.0 * reward_grab + 6.0 * reward_in_place) * reward_quat
    success = frame.nail_slide[:, 0] > 0.09
    return jnp.where(success & (reward > 5.0), 10.0, reward), success


PORT = TaskPort(
    reads={
        "hammer": Read("body_pos", "hammer"),
        "nail": Read("body_pos", "nail_link"),
        "hammer_quat": Read("body_quat", "hammer"),
        "nail_quat": Read("body_quat", "nail_link"),
        "nail_slide": Read("qpos", "NailSlideJoint"),
    },
    constants={"obj_init_pos": attribute("obj_init_pos")},
    objects=objects,
    reward=reward,
)

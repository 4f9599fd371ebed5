"""stick-push-v3 (`SawyerStickPushEnvV3`): grasp the stick and push the thermos to the goal with it.

Success needs the stick held (both pads pressing on it, `touching_main_object`, and lifted) while the
container is within 12 cm of the goal.
"""

import jax.numpy as jnp

from ..port import Frame, Read, TaskPort, attribute
from ..rewards import gripper_caging_reward, norm, tolerance
from ._wrench_hammer_stick import stick_objects

TARGET_RADIUS = 0.12
STICK_OFFSET = jnp.array([0.015, 0.0, 0.0])
INSERTION_OFFSET = jnp.array([0.0, 0.09, 0.0])


def objects(frame):
    return stick_objects(frame, frame.insertion + INSERTION_OFFSET)


def reward(frame, consts, obs, action):
    stick, container, tcp_opened, target = (
        obs[:, 4:7] + STICK_OFFSET,
        obs[:, 11:14],
        obs[:, 3],
        consts.target_pos,
    )
    stick_init = consts.stick_init_pos
    tcp_to_stick = norm(stick - frame.tcp)
    stick_in_place = tolerance(
        norm(stick - target),
        bounds=(0, TARGET_RADIUS),
        margin=norm(stick_init - target) - TARGET_RADIUS,
        sigmoid="long_tail",
    )
    container_to_target = norm(container - target)
    container_in_place = tolerance(
        container_to_target,
        bounds=(0, TARGET_RADIUS),
        margin=norm(consts.obj_init_pos - target) - TARGET_RADIUS,
        sigmoid="long_tail",
    )
    # the task overrides the caging reward only to measure from the stick's start, not obj_init_pos
    object_grasped = gripper_caging_reward(
        frame,
        Frame(obj_init_pos=stick_init, init_tcp=consts.init_tcp),
        action,
        stick,
        obj_radius=0.04,
        pad_success_thresh=0.05,
        object_reach_radius=0.01,
        xz_thresh=0.01,
        high_density=True,
    )
    grasped = (tcp_to_stick < 0.02) & (tcp_opened > 0) & (stick[:, 2] - 0.01 > stick_init[:, 2])
    reward = jnp.where(grasped, 2.0 + 5.0 * stick_in_place + 3.0 * container_in_place, object_grasped)
    reward = jnp.where(grasped & (container_to_target <= TARGET_RADIUS), 10.0, reward)
    held = (frame.touching[:, 0] > 0.5) & (tcp_opened > 0) & (obs[:, 6] - 0.01 > stick_init[:, 2])
    return reward, held & (norm(container - target) <= 0.12)


PORT = TaskPort(
    reads={
        "stick": Read("body_pos", "stick"),
        "stick_mat": Read("body_mat", "stick"),
        "insertion": Read("site_pos", "insertion"),
        "touching": Read("touching", "objGeom"),  # the base `_get_id_main_object`
    },
    constants={"obj_init_pos": attribute("obj_init_pos"), "stick_init_pos": attribute("stick_init_pos")},
    objects=objects,
    reward=reward,
)

"""stick-pull-v3 (`SawyerStickPullEnvV3`): grasp the stick, hook it into the thermos handle, pull it back.

Success: the stick's end is inserted in the handle and the handle is within 12 cm of the goal.
"""

import jax.numpy as jnp

from ..port import Read, TaskPort, attribute
from ..rewards import gripper_caging_reward, hamacher_product, norm, tolerance
from ._wrench_hammer_stick import stick_objects

TARGET_RADIUS = 0.05
CONTAINER_OFFSET = jnp.array([0.05, 0.0, 0.0])  # container point relative to the handle
YZ_SCALING = jnp.array([1.0, 1.0, 2.0])


def objects(frame):
    return stick_objects(frame, frame.insertion)


def closeness(distance, margin):
    return tolerance(distance, bounds=(0, TARGET_RADIUS), margin=margin, sigmoid="long_tail")


def stick_is_inserted(handle, end_of_stick):
    return (
        (end_of_stick[:, 0] >= handle[:, 0])
        & (jnp.abs(end_of_stick[:, 1] - handle[:, 1]) <= 0.040)
        & (jnp.abs(end_of_stick[:, 2] - handle[:, 2]) <= 0.060)
    )


def reward(frame, consts, obs, action):
    stick, handle, tcp_opened, target = obs[:, 4:7], obs[:, 11:14], obs[:, 3], consts.target_pos
    stick_init, obj_init = consts.stick_init_pos, consts.obj_init_pos
    container = handle + CONTAINER_OFFSET
    container_init = obj_init + CONTAINER_OFFSET
    tcp_to_stick = norm(stick - frame.tcp)
    handle_to_target = norm(handle - target)
    stick_in_place = closeness(
        norm((stick - container) * YZ_SCALING), norm((stick_init - container_init) * YZ_SCALING)
    )
    stick_in_place_2 = closeness(norm(stick - target), norm(stick_init - target))
    # the margin is measured from the thermos body's start, not from the container point
    container_in_place = closeness(norm(container - target), norm(obj_init - target))
    # the base-class caging reward, so its "initial object" is obj_init_pos (the thermos), not the stick
    object_grasped = gripper_caging_reward(
        frame,
        consts,
        action,
        stick,
        obj_radius=0.014,
        pad_success_thresh=0.05,
        object_reach_radius=0.01,
        xz_thresh=0.01,
        high_density=True,
    )
    grasped = (tcp_to_stick < 0.02) & (tcp_opened > 0) & (stick[:, 2] - 0.01 > stick_init[:, 2])
    object_grasped = jnp.where(grasped, 1.0, object_grasped)
    in_place_and_object_grasped = hamacher_product(object_grasped, stick_in_place)
    inserted = stick_is_inserted(handle, frame.stick_end)
    hooked = 1.0 + in_place_and_object_grasped + 5.0 + 2.0 * stick_in_place_2 + container_in_place
    reward = jnp.where(
        grasped, 1.0 + in_place_and_object_grasped + 5.0 * stick_in_place, in_place_and_object_grasped
    )
    reward = jnp.where(grasped & inserted, hooked, reward)
    reward = jnp.where(grasped & inserted & (handle_to_target <= 0.12), 10.0, reward)
    return reward, (handle_to_target <= 0.12) & inserted


PORT = TaskPort(
    reads={
        "stick": Read("body_pos", "stick"),
        "stick_mat": Read("body_mat", "stick"),
        "insertion": Read("site_pos", "insertion"),
        "stick_end": Read("site_pos", "stick_end"),
    },
    constants={"obj_init_pos": attribute("obj_init_pos"), "stick_init_pos": attribute("stick_init_pos")},
    objects=objects,
    reward=reward,
)

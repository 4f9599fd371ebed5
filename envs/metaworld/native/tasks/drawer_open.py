"""drawer-open-v3 (`SawyerDrawerOpenEnvV3`): pull the drawer handle to the goal, 3 cm tolerance."""

import jax.numpy as jnp

from ..port import Read, TaskPort, attribute
from ..rewards import norm, tolerance

HANDLE_OFFSET = jnp.array([0.0, -0.16, 0.0])  # handle relative to the drawer_link body


def objects(frame):
    return frame.drawer_link + HANDLE_OFFSET, frame.drawer_quat


def reward(frame, consts, obs, action):
    gripper, handle = obs[:, :3], obs[:, 4:7]
    max_dist = consts.max_dist[:, 0]
    handle_error = norm(handle - consts.target_pos)
    opening = tolerance(handle_error, bounds=(0, 0.02), margin=max_dist, sigmoid="long_tail")
    handle_pos_init = consts.target_pos + jnp.stack(
        [jnp.zeros_like(max_dist), max_dist, jnp.zeros_like(max_dist)], axis=1
    )
    scale = jnp.array([3.0, 3.0, 1.0])
    gripper_error = (handle - gripper) * scale
    gripper_error_init = (handle_pos_init - consts.init_tcp) * scale
    caging = tolerance(
        norm(gripper_error), bounds=(0, 0.01), margin=norm(gripper_error_init), sigmoid="long_tail"
    )
    return 5.0 * (caging + opening), handle_error <= 0.03


PORT = TaskPort(
    reads={"drawer_link": Read("body_pos", "drawer_link"), "drawer_quat": Read("body_quat", "drawer_link")},
    constants={"max_dist": attribute("maxDist", 1)},
    objects=objects,
    reward=reward,
)

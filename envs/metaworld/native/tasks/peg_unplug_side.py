"""peg-unplug-side-v3 (`SawyerPegUnplugSideEnvV3`): grasp the plug and pull it out of the box sideways.

Success: the peg end is within 7 cm of the goal (15 cm out along x).
"""

import jax.numpy as jnp

from ..port import Read, TaskPort, attribute
from ..rewards import gripper_caging_reward, norm, tolerance


def objects(frame):
    return frame.peg_end, frame.plug_quat


def reward(frame, consts, obs, action):
    obj, tcp_opened, target = obs[:, 4:7], obs[:, 3], consts.target_pos
    tcp_to_obj = norm(obj - frame.tcp)
    obj_to_target = norm(obj - target)
    object_grasped = gripper_caging_reward(
        frame,
        consts,
        action,
        obj,
        object_reach_radius=0.01,
        obj_radius=0.025,
        pad_success_thresh=0.05,
        xz_thresh=0.005,
        desired_gripper_effort=0.8,
        high_density=True,
    )
    in_place_margin = norm(consts.obj_init_pos - target)
    in_place = tolerance(obj_to_target, bounds=(0, 0.05), margin=in_place_margin, sigmoid="long_tail")
    pulling = (tcp_opened > 0.5) & (obj[:, 0] - consts.obj_init_pos[:, 0] > 0.015) & (tcp_to_obj < 0.035)
    reward = jnp.where(pulling, 1.0 + 2.0 * object_grasped + 5.0 * in_place, 2.0 * object_grasped)
    reward = jnp.where(obj_to_target <= 0.05, 10.0, reward)
    return reward, obj_to_target <= 0.07


PORT = TaskPort(
    reads={"peg_end": Read("site_pos", "pegEnd"), "plug_quat": Read("body_quat", "plug1")},
    constants={"obj_init_pos": attribute("obj_init_pos")},
    objects=objects,
    reward=reward,
)

"""reach-v3 (`SawyerReachEnvV3`): bring the gripper's tcp within 5 cm of the goal."""

from ..port import Read, TaskPort, attribute
from ..rewards import norm, quat_from_matrix, tolerance


def objects(frame):
    return frame.obj, quat_from_matrix(frame.obj_mat)


def reward(frame, consts, obs, action):
    tcp_to_target = norm(frame.tcp - consts.target_pos)
    in_place_margin = norm(consts.hand_init_pos - consts.target_pos)
    in_place = tolerance(tcp_to_target, bounds=(0, 0.05), margin=in_place_margin, sigmoid="long_tail")
    return 10 * in_place, tcp_to_target <= 0.05


PORT = TaskPort(
    reads={"obj": Read("body_pos", "obj"), "obj_mat": Read("geom_mat", "objGeom")},
    constants={"hand_init_pos": attribute("hand_init_pos")},
    objects=objects,
    reward=reward,
)

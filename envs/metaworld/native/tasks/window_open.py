"""window-open-v3 (`SawyerWindowOpenEnvV3`): slide the window open; success when the handle's x is
within 5 cm of the goal's x."""

from ..port import TaskPort, attribute
from ._doors_and_windows import window_objects, window_reads, window_reward


def reward(frame, consts, obs, action):
    return window_reward(frame, consts, consts.obj_init_pos[:, 0], reach_sigmoid="long_tail")


PORT = TaskPort(
    reads=window_reads("handleOpenStart"),
    constants={
        "obj_init_pos": attribute("obj_init_pos"),
        "window_handle_pos_init": attribute("window_handle_pos_init"),
    },
    objects=window_objects,
    reward=reward,
)

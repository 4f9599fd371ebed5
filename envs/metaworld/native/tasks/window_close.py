"""window-close-v3 (`SawyerWindowCloseEnvV3`): slide the window shut; success when the handle's x is
within 5 cm of the goal's x."""

from ..port import TaskPort, attribute
from ._doors_and_windows import window_objects, window_reads, window_reward


def reward(frame, consts, obs, action):
    handle_start_x = consts.window_handle_pos_init[:, 0]
    return window_reward(frame, consts, handle_start_x, reach_sigmoid="gaussian")


PORT = TaskPort(
    reads=window_reads("handleCloseStart"),
    constants={"window_handle_pos_init": attribute("window_handle_pos_init")},
    objects=window_objects,
    reward=reward,
)

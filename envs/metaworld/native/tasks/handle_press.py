"""handle-press-v3 (`SawyerHandlePressEnvV3`): press the handle down; success when its height is within
2 cm of the goal's."""

from ..port import TaskPort
from ._handles_and_faucets import (
    HANDLE_PRESS_CONSTANTS,
    HANDLE_PRESS_READS,
    handle_press_objects,
    handle_press_reward,
)

PORT = TaskPort(
    reads=HANDLE_PRESS_READS,
    constants=HANDLE_PRESS_CONSTANTS,
    objects=handle_press_objects,
    reward=handle_press_reward,
)

"""reach-wall-v3 (`SawyerReachWallEnvV3`): reach past a wall, tcp within 5 cm of the goal.

The wall only changes the physics: the reward, success and observed object are reach-v3's, line for
line (tcp-to-goal tolerance with the hand's start as margin), so this port reuses them.
"""

from ..port import TaskPort, attribute
from ._object_observations import OBJ_GEOM_MAT_READS, obj_geom_mat_objects
from .reach import reward

PORT = TaskPort(
    reads=OBJ_GEOM_MAT_READS,
    constants={"hand_init_pos": attribute("hand_init_pos")},
    objects=obj_geom_mat_objects,
    reward=reward,
)

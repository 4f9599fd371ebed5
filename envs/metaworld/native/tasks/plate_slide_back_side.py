"""plate-slide-back-side-v3 (`SawyerPlateSlideBackSideEnvV3`): slide the puck sideways out of the cabinet.

Success: the puck within 7 cm of the goal.
"""

from ..port import TaskPort
from ._slide_and_push import OBJ_INIT_POS, geom_objects, geom_reads, plate_slide_lowered_reward

PORT = TaskPort(
    reads=geom_reads("puck"),
    constants=OBJ_INIT_POS,
    objects=geom_objects,
    reward=plate_slide_lowered_reward,
)

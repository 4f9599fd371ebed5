"""dial-turn-v3 (`SawyerDialTurnEnvV3`): grip and turn the dial; success when a point on its rim is within
7 cm of the goal."""

import jax.numpy as jnp
import numpy as np

from ..port import Constant, Read, TaskPort
from ..rewards import hamacher_product, norm, tolerance
from ._precise_offsets import split, tcp_to

TARGET_RADIUS = 0.07
REACH_RADIUS = 0.005
DIAL_RADIUS = 0.05
PUSH_OFFSET = jnp.array([0.05, 0.02, 0.09])  # where the tcp should be, relative to the rim point


def rim_offset(frame):
    """The rim point relative to the dial body, along the knob joint's angle."""
    angle = frame.knob_angle[:, 0]
    return DIAL_RADIUS * jnp.stack([jnp.sin(angle), -jnp.cos(angle), jnp.zeros_like(angle)], axis=1)


def objects(frame):
    """`_get_pos_objects`; the quaternion is the outer dial body's, which does not turn with the knob."""
    return frame.dial + rim_offset(frame), frame.dial_quat


def reward(frame, consts, obs, action):
    # The in-place term falls off over a margin of only ~3 cm and the reach term over ~13 cm, so float32
    # rounding of positions near 0.7 m matters. Distances are formed from small differences instead:
    # (dial - dial at reset) is exactly 0 while the dial body stays put (it does not turn with the knob),
    # and (dial at reset - goal) and both margins are taken in float64 on the host.
    dial_init = consts.dial_init[:, :3]
    obj_to_target = (frame.dial - dial_init) + consts.dial_init_to_target + rim_offset(frame)
    target_to_obj = norm(obj_to_target)
    in_place = tolerance(
        target_to_obj, bounds=(0, TARGET_RADIUS), margin=consts.in_place_margin[:, 0], sigmoid="long_tail"
    )
    tcp_to_obj = norm(tcp_to(frame, frame.dial, consts.dial_init) + (rim_offset(frame) + PUSH_OFFSET))
    reach = tolerance(
        tcp_to_obj, bounds=(0, REACH_RADIUS), margin=consts.reach_margin[:, 0], sigmoid="gaussian"
    )
    gripper_closed = jnp.minimum(jnp.maximum(0, action[:, -1]), 1)
    reach = hamacher_product(reach, gripper_closed)
    return 10 * hamacher_product(reach, in_place), target_to_obj <= TARGET_RADIUS


def _in_place_margin(env):
    # measured from the push position at reset, not from the rim point (as metaworld does)
    return abs(np.linalg.norm(env.dial_push_position - env._target_pos) - TARGET_RADIUS)


def _reach_margin(env):
    return abs(np.linalg.norm(env.dial_push_position - env.init_tcp) - REACH_RADIUS)


PORT = TaskPort(
    reads={
        "dial": Read("body_pos", "dial"),
        "dial_quat": Read("body_quat", "dial"),
        "knob_angle": Read("qpos", "knob_Joint_1"),
    },
    constants={
        "dial_init": Constant(6, lambda env: split(env.data.body("dial").xpos)),
        "dial_init_to_target": Constant(3, lambda env: env.data.body("dial").xpos - env._target_pos),
        "in_place_margin": Constant(1, _in_place_margin),
        "reach_margin": Constant(1, _reach_margin),
    },
    objects=objects,
    reward=reward,
)

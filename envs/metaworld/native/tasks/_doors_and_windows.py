"""Object reads of the door and lock ports, and the reads and reward of the window ports.

door-open and door-close observe the same handle geom; door-lock and door-unlock a site on the lock
with the door's quaternion; window-open and window-close a handle site, and share one reward that
differs only in where the in-place margin is measured from and the reach sigmoid. Each pair's common
part lives here once, so the task modules keep only what differs.
"""

import jax.numpy as jnp

from ..port import Read
from ..rewards import hamacher_product, norm, quat_from_matrix, tolerance

# door-open / door-close: the observed object is the door handle geom, oriented by its rotation matrix.
DOOR_HANDLE_READS = {"handle": Read("geom_pos", "handle"), "handle_mat": Read("geom_mat", "handle")}


def door_handle_objects(frame):
    return frame.handle, quat_from_matrix(frame.handle_mat)


# door-lock / door-unlock: a site on the lock, with the door body's MuJoCo quaternion (w, x, y, z).
LOCK_LENGTH = 0.1  # metaworld's `_lock_length`, fixed at construction


def lock_reads(site: str) -> dict:
    return {"lock": Read("site_pos", site), "door_quat": Read("body_quat", "door_link")}


def lock_objects(frame):
    return frame.lock, frame.door_quat


# window-open / window-close: a handle site, no orientation (zeros).
def window_reads(site: str) -> dict:
    return {"handle": Read("site_pos", site)}


def window_objects(frame):
    return frame.handle, jnp.zeros((frame.handle.shape[0], 4), frame.handle.dtype)


def window_reward(frame, consts, handle_start_x, reach_sigmoid: str):
    """Both window tasks: slide the handle's x to the goal's x (5 cm), reaching it with the tcp.

    The reward uses the handle site itself, not its (clipped) observation. `handle_start_x` [envs] is
    the x from which the in-place margin is measured (it differs between the two tasks).
    """
    target_radius, handle_radius = 0.05, 0.02
    handle, target = frame.handle, consts.target_pos
    target_to_obj = jnp.abs(handle[:, 0] - target[:, 0])
    target_to_obj_init = jnp.abs(handle_start_x - target[:, 0])
    in_place = tolerance(
        target_to_obj,
        bounds=(0, target_radius),
        margin=jnp.abs(target_to_obj_init - target_radius),
        sigmoid="long_tail",
    )
    tcp_to_obj = norm(handle - frame.tcp)
    tcp_to_obj_init = norm(consts.window_handle_pos_init - consts.init_tcp)
    reach = tolerance(
        tcp_to_obj,
        bounds=(0, handle_radius),
        margin=jnp.abs(tcp_to_obj_init - handle_radius),
        sigmoid=reach_sigmoid,
    )
    return 10 * hamacher_product(reach, in_place), target_to_obj <= target_radius

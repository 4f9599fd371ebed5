"""The two ways metaworld observes a single `obj` body, shared by the ports that use them.

Metaworld observes the object either as the `obj` body with its MuJoCo quaternion (w, x, y, z)
(bin-picking, hand-insert, pick-out-of-hole, sweep), or as the `obj` body position with the
orientation of its `objGeom` geom converted by scipy (x, y, z, w) (reach-wall, shelf-place,
sweep-into). Each reading is written here once, with the metaworld call it mirrors.
"""

from ..port import Read
from ..rewards import quat_from_matrix

# `get_body_com("obj")` and `data.body("obj").xquat`
OBJ_BODY_READS = {"obj": Read("body_pos", "obj"), "obj_quat": Read("body_quat", "obj")}


def obj_body_objects(frame):
    return frame.obj, frame.obj_quat


# `get_body_com("obj")` and `Rotation.from_matrix(data.geom("objGeom").xmat).as_quat()`
OBJ_GEOM_MAT_READS = {"obj": Read("body_pos", "obj"), "obj_mat": Read("geom_mat", "objGeom")}


def obj_geom_mat_objects(frame):
    return frame.obj, quat_from_matrix(frame.obj_mat)

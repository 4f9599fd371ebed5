"""Vmapped seeds over every local device: the leading (seed) axis of the train state is split across
`jax.devices()`, and the jitted, vmapped programs then run each device's seeds where they live.

Seeds never exchange data, so splitting them needs no communication and changes no number: seed i computes
on one device what it would compute alone. The split takes the most devices that divide the seed count (8
seeds on 4 GPUs use all 4, 6 use 3, 5 use one), so every device holds the same number of seeds.
Envs that step on the host are not split: their callbacks take the whole seed axis in one call.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec, SingleDeviceSharding

from mtrl.types import Env

SEED_AXIS = "seed"


def seed_devices(num_seeds: int, devices: list | None = None) -> list:
    """The devices `num_seeds` vmapped seeds are split over: the largest count that divides the seeds."""
    devices = list(jax.devices() if devices is None else devices)
    count = max(n for n in range(1, len(devices) + 1) if num_seeds % n == 0)
    return devices[:count]


def seed_sharding(num_seeds: int, env: Env) -> NamedSharding | None:
    """How arrays with a leading seed axis are laid out, or None when there is nothing to split (one seed,
    one usable device, or an env that steps on the host)."""
    devices = seed_devices(num_seeds) if num_seeds > 1 and not env.steps_on_host else []
    if len(devices) < 2:
        return None
    return NamedSharding(Mesh(np.array(devices), (SEED_AXIS,)), PartitionSpec(SEED_AXIS))


def spread_seeds(tree, sharding: NamedSharding | None):
    """Every leaf of `tree` (each with a leading seed axis) placed by `sharding`; `tree` itself if None."""
    return tree if sharding is None else jax.device_put(tree, sharding)


def spanned(tree) -> int:
    """How many devices the arrays of `tree` live on (recorded with each checkpoint)."""
    shardings = [leaf.sharding for leaf in jax.tree.leaves(tree) if isinstance(leaf, jax.Array)]
    return len({device for sharding in shardings for device in sharding.device_set})


def on_first_device(abstract_tree):
    """`abstract_tree` (ShapeDtypeStructs) to be restored onto the first device, whatever layout its
    checkpoint was written from: a run trained over several devices resumes on one, and the loops spread it
    again (`spread_seeds`)."""
    first = SingleDeviceSharding(jax.devices()[0])

    def placed(leaf):
        if not isinstance(leaf, jax.ShapeDtypeStruct):
            return leaf
        return jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=first)

    return jax.tree.map(placed, abstract_tree)

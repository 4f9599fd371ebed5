"""The SAC core shared by the SAC-family agents; they differ only in the torso network."""

from .agent import SACState, act, init, make_optimizers, update
from .config import SACConfig
from .networks import SACNetworks, make_sac_networks

__all__ = [
    "SACConfig",
    "SACNetworks",
    "SACState",
    "act",
    "init",
    "make_optimizers",
    "make_sac_networks",
    "update",
]

"""The SAC core shared by the SAC-family agents; they differ only in the torso, which `sac_agent` binds."""

from .agent import SACAgent, SACState, act, init, make_optimizers, sac_agent, update
from .config import SACConfig
from .networks import SACNetworks, make_sac_networks

__all__ = [
    "SACAgent",
    "SACConfig",
    "SACNetworks",
    "SACState",
    "act",
    "init",
    "make_optimizers",
    "make_sac_networks",
    "sac_agent",
    "update",
]

"""The SAC core shared by the SAC-family agents; they differ only in the torso network."""

from .agent import SACState, act, init, make_optimizers, update
from .config import SACConfig
from .networks import SACNetworks

__all__ = ["SACConfig", "SACNetworks", "SACState", "act", "init", "make_optimizers", "update"]

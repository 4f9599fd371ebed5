"""The `native` Meta-World backend: metaworld's models and resets, batched host physics, JAX rewards."""

from .env import NativeEnv, NativeState
from .tasks import get_port, ported_tasks

__all__ = ["NativeEnv", "NativeState", "get_port", "ported_tasks"]

"""Load a trained policy from a run directory and act on NumPy observations — no training code involved.

    policy = load_policy("runs/<run>")
    action = policy(obs)            # obs: one observation [obs_size] or a batch [n, obs_size]

For MT benchmarks the task is read from the one-hot id that ends each observation (as metaworld's
`use_one_hot=True` envs produce it); pass `task_id=` to give it explicitly. A `Policy` is also a
`metaworld.evaluation.Agent`: `metaworld.evaluation.evaluation(policy, envs)` scores it in metaworld's loop.

A meta-RL agent is not one fixed policy: `load_meta_agent("runs/<run>")` gives its `MetaAgent` functions
(`init_adaptation`, `act`, `adapt`) and trained state, for `mtrl.meta_evaluation.meta_evaluate` or your own
adaptation loop.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from mtrl import checkpoint
from mtrl.agents import get_agent
from mtrl.app.config import load_run_config
from mtrl.app.wiring import agent_template, is_meta
from mtrl.meta_evaluation import MetaAgent
from mtrl.types import EnvSpec, PyTree


@dataclasses.dataclass(frozen=True)
class Policy:
    """A deterministic policy restored from a checkpoint; call it on NumPy observations."""

    spec: EnvSpec
    state: PyTree
    act: object

    def __call__(self, obs: np.ndarray, task_id: int | np.ndarray | None = None) -> np.ndarray:
        obs = np.asarray(obs, np.float32)
        single = obs.ndim == 1
        obs = np.atleast_2d(obs)
        if obs.shape[-1] != self.spec.obs_size:
            raise ValueError(
                f"observation has {obs.shape[-1]} values, the policy expects {self.spec.obs_size}"
            )
        if task_id is None:
            task_id = obs[:, -self.spec.num_tasks :].argmax(-1)
        task_id = np.broadcast_to(np.asarray(task_id, np.int32), obs.shape[:1])
        action = np.asarray(self.act(self.state, jnp.asarray(obs), jnp.asarray(task_id)))
        return action[0] if single else action

    def eval_action(self, observations: np.ndarray) -> np.ndarray:
        """`metaworld.evaluation.Agent`'s action method: the deterministic actions for a batch of
        observations, so that `metaworld.evaluation.evaluation(policy, envs)` scores a loaded policy with
        Meta-World's own evaluation loop (envs built with `use_one_hot=True`)."""
        return self(observations)

    def reset(self, env_mask: np.ndarray) -> None:
        """`metaworld.evaluation.Agent`'s episode-start hook: a multi-task policy keeps no memory."""
        del env_mask


@dataclasses.dataclass(frozen=True)
class LoadedMetaAgent:
    """A trained meta-RL agent: its functions, its state and the spec of the env it was meta-trained on."""

    agent: MetaAgent
    state: PyTree
    spec: EnvSpec


def load_policy(run_dir: str | Path, *, step: int | None = None, seed_index: int = 0) -> Policy:
    """Restore the agent of `run_dir` (newest checkpoint unless `step`); `seed_index` picks one of N seeds."""
    config, spec, state = _restore(Path(run_dir), step, seed_index)
    if is_meta(config.agent_name):
        raise ValueError(
            f"{run_dir} holds a meta-RL agent ({config.agent_name}), which acts through adaptation, not as "
            "one fixed policy; use load_meta_agent"
        )
    module = get_agent(config.agent_name)
    key = jax.random.key(0)
    act = jax.jit(lambda s, o, t: module.act(s, o, t, key, True))
    return Policy(spec=spec, state=state, act=act)


def load_meta_agent(run_dir: str | Path, *, step: int | None = None, seed_index: int = 0) -> LoadedMetaAgent:
    """The meta-RL agent of `run_dir`, e.g. for `meta_evaluate(env, loaded.agent, loaded.state, key)`."""
    config, spec, state = _restore(Path(run_dir), step, seed_index)
    if not is_meta(config.agent_name):
        raise ValueError(
            f"{run_dir} holds a multi-task agent ({config.agent_name}), which cannot adapt; use load_policy"
        )
    module = get_agent(config.agent_name)
    agent = MetaAgent(config.agent_name, module.init_adaptation, module.act, module.adapt)
    return LoadedMetaAgent(agent=agent, state=state, spec=spec)


def _restore(run_dir: Path, step: int | None, seed_index: int):
    config = load_run_config(run_dir)
    spec = EnvSpec.from_dict(json.loads((run_dir / "spec.json").read_text()))
    state = checkpoint.restore(run_dir, agent_template(config, spec), step)  # text tables: the run's copy
    if config.num_seeds > 1:
        state = jax.tree.map(lambda x: x[seed_index], state)
    return config, spec, state

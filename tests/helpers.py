"""Code that several test modules share; test modules never import one another.

Pytest fixtures shared between modules live in conftest.py; this module holds the plain constants and
functions they and the tests build on: the 3-task spec and random batches of the agent contract, jitted
Flax init, the linear SAC of the hand-computed loss tests, and the toy-env training configs.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from mtrl.agents import AGENTS
from mtrl.agents.sac import SACConfig, SACNetworks

from mtrl import checkpoint, training
from mtrl.app import wiring
from mtrl.app.config import EnvConfig, TrainConfig, load_run_config, to_json
from mtrl.logger import ELAPSED, WandbConfig, read_metrics, without_wall_clock
from mtrl.types import EnvSpec, Transition

# --- the agent contract: a 3-task spec and random batches ----------------------------------------------

SPEC = EnvSpec(
    name="test",
    obs_size=6,
    action_size=2,
    task_names=("a", "b", "c"),
    envs_per_task=1,
    episode_length=10,
    goals_per_task=1,
)


SAC_AGENTS = [name for name, module in AGENTS.items() if not hasattr(module, "train_iteration")]
"""The SAC family, which shares `update` and `act` (episodic agents have their own test files)."""
_SMALL_SAC = {"hidden_sizes": (32, 32)}
SAC_CONFIGS = {
    "mt_sac": _SMALL_SAC,
    "mh_sac": _SMALL_SAC,
    "moore_sac": {**_SMALL_SAC, "num_experts": 2},
    "care_sac": {**_SMALL_SAC, "num_encoders": 2, "encoder_sizes": (8, 8), "context_sizes": (8, 8)},
    "paco_sac": {**_SMALL_SAC, "num_components": 2},
    "softmod_sac": {**_SMALL_SAC, "module_size": 8, "routing_sizes": (8, 8)},
    "hyper_sac": {**_SMALL_SAC, "hyper_sizes": (8, 8), "embedding_size": 4},
}
"""Small configs of every SAC agent on SPEC."""


def make_batch(seed: int, task_ids: list[int], rows_per_task: int = 4, *lead: int) -> Transition:
    """Random rows, `rows_per_task` for each of `task_ids`, with optional leading (seed) axes."""
    rng = np.random.default_rng(seed)
    task_id = np.repeat(np.asarray(task_ids, np.int32), rows_per_task)
    n = task_id.shape[0]
    return Transition(
        obs=rng.normal(size=(*lead, n, SPEC.obs_size)).astype(np.float32),
        action=rng.uniform(-1, 1, size=(*lead, n, SPEC.action_size)).astype(np.float32),
        reward=rng.normal(size=(*lead, n)).astype(np.float32),
        next_obs=rng.normal(size=(*lead, n, SPEC.obs_size)).astype(np.float32),
        terminated=np.broadcast_to(np.arange(n) % 5 == 0, (*lead, n)).astype(np.float32),
        task_id=np.broadcast_to(task_id, (*lead, n)).copy(),
    )


def fast_key(seed: int) -> jax.Array:
    """An "rbg" key: XLA compiles threefry slowly on CPU, and tiny-network tests are compile time.

    Under vmap, rbg draws differ from unbatched ones; the vmap test checks that vmap works, not that
    batched seeds reproduce single runs (the training-loop tests do that with default keys).
    """
    return jax.random.key(seed, impl="rbg")


def flat(tree) -> np.ndarray:
    return np.concatenate([np.ravel(x) for x in jax.tree.leaves(tree)])


# Jitted init: run eagerly, every Flax op would be dispatched (and compiled) on its own.
def init(module: nn.Module, *args, seed: int = 0):
    return jax.jit(module.init)(jax.random.key(seed, impl="rbg"), *args)


# --- the linear SAC of the hand-computed losses (the `linear_sac` fixture in conftest.py) --------------

OBS, ACT, TASKS, GAMMA = 3, 2, 2, 0.9
TARGET_ENTROPY = -2.0


class Linear(nn.Module):
    """A torso with one linear layer, so every network output is `x @ W + b`."""

    output_size: int

    @nn.compact
    def __call__(self, x, task_id):
        del task_id
        return nn.Dense(self.output_size, name="dense")(x)


def linear_params(rng, inputs: int, outputs: int, scale: float = 0.5):
    return {
        "kernel": (scale * rng.normal(size=(inputs, outputs))).astype(np.float32),
        "bias": (scale * rng.normal(size=(outputs,))).astype(np.float32),
    }


def linear_sac():
    """Actor, twin critics, twin targets, a 4-row batch (tasks 0, 1, 0, 1; row 2 terminated), log α."""
    rng = np.random.default_rng(0)
    actor = linear_params(rng, OBS, 2 * ACT)
    critics = [linear_params(rng, OBS + ACT, 1) for _ in range(2)]
    targets = [linear_params(rng, OBS + ACT, 1) for _ in range(2)]
    batch = Transition(
        obs=rng.normal(size=(4, OBS)).astype(np.float32),
        action=rng.uniform(-1, 1, size=(4, ACT)).astype(np.float32),
        reward=np.array([1.0, -0.5, 0.25, 2.0], np.float32),
        next_obs=rng.normal(size=(4, OBS)).astype(np.float32),
        terminated=np.array([0.0, 0.0, 1.0, 0.0], np.float32),
        task_id=np.array([0, 1, 0, 1], np.int32),
    )
    log_alphas = np.log(np.array([0.5, 2.0], np.float32))
    return actor, critics, targets, batch, log_alphas


def as_jax(actor, critics):
    stack = lambda ps: {"params": {"dense": jax.tree.map(lambda *x: jnp.stack(x), *ps)}}
    return {"params": {"dense": actor}}, stack(critics)


NETWORKS = SACNetworks(actor=Linear(2 * ACT), critic=Linear(1))
CONFIG = SACConfig(hidden_sizes=(1,), gamma=GAMMA)


def np_policy_sample(actor, obs, noise):
    """Hand derivation of the tanh-Gaussian: u = μ + σ ε, a = tanh(u), and by change of variables
    log π(a|s) = Σ_i [log N(u_i; μ_i, σ_i) − log(1 − tanh(u_i)²)]."""
    out = obs @ actor["kernel"] + actor["bias"]
    mean, log_std = out[:, :ACT], np.clip(out[:, ACT:], -10.0, 2.0)
    std = np.exp(log_std)
    u = mean + std * noise
    log_normal = -0.5 * ((u - mean) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi)
    action = np.tanh(u)
    return action, np.sum(log_normal - np.log(1.0 - action**2), axis=1)


def np_q(params, obs, action):
    return (np.concatenate([obs, action], axis=1) @ params["kernel"] + params["bias"])[:, 0]


# --- training on the toy env ------------------------------------------------------------------------

TOY = EnvConfig(name="toy", envs_per_task=8, toy_num_tasks=4)
SHORT = training.LoopConfig(
    steps_per_task=2_000,
    warmup_steps_per_task=400,
    steps_per_iteration=25,
    batch_per_task=64,
    replay_per_task=20_000,
    eval_every_steps_per_task=0,
    eval_envs_per_task=10,
    eval_goals_per_task=10,
    log_every_steps_per_task=400,
)
# Learning budget: ~25k env steps per task, one update per vector step of 8 envs per task.
LEARN = dataclasses.replace(
    SHORT, steps_per_task=24_000, warmup_steps_per_task=1_000, log_every_steps_per_task=4_000
)
# Toy rewards are ~1 per step (Meta-World's reach 10), so the entropy bonus starts 10x lower than the
# MT10 recipe's alpha of 1.
SMALL = {"hidden_sizes": (64, 64), "initial_alpha": 0.1}


def toy_config(agent, loop=SHORT, **kwargs):
    return TrainConfig(agent=agent, env=TOY, loop=loop, wandb=WandbConfig(mode="disabled"), **kwargs)


def run_loop(config, keys):
    train_env, eval_env = wiring.make_envs(config)
    logged = []
    hooks = training.Hooks(log=lambda step, metrics: logged.append((step, metrics)))
    state, final = training.train(
        train_env, eval_env, wiring.make_agent(config), config.loop, keys, hooks=hooks
    )
    return state, final, logged


# --- run directories written by hand, for `mtrl report` ----------------------------------------------------

TASKS = ("reach", "push", "pick", "door")
MT4 = EnvConfig(name="MT10")  # the benchmark name matters for grouping and published rows; 4 tasks suffice


def write_run(
    path, agent, seed, task_curves, *, env=MT4, num_seeds=1, seed_means=None, steps=(1000, 2000), elapsed=None
):
    """A run directory by hand: `task_curves` is `[evals, tasks]` success (averaged over seeds if vmapped);
    `elapsed`, the wall-clock seconds of each evaluation, if given."""
    config = TrainConfig(
        agent=agent,
        env=env,
        seed=seed,
        num_seeds=num_seeds,
        run_dir=path,
        wandb=WandbConfig(project=str(seed)),
    )
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(to_json(config), default=str))
    (path / "spec.json").write_text(json.dumps({"task_names": list(TASKS)}))
    lines = [{"step": 4 * steps[0] // 2, "train/critic_loss": 1.0}]  # a non-eval record is skipped
    for i, (step, row) in enumerate(zip(steps, np.asarray(task_curves), strict=True)):
        record = {"step": 4 * step, "env/steps_per_task": step, "eval/success": float(np.mean(row))}
        record.update({f"eval/{t}/success": float(v) for t, v in zip(TASKS, row, strict=True)})
        for s, means in enumerate(seed_means or []):
            record[f"eval/seed{s}/success"] = means[i]
        if elapsed is not None:
            record[ELAPSED] = float(elapsed[i])
        lines.append(record)
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    return path


# --- runs stopped and resumed: toy flags for `mtrl train`, and the bit-identity check -------------------

# ~13 checkpoints, 20 log lines and 4 evaluations in 4,000 steps per task
RESUMABLE_TOY_FLAGS = """
    --agent mt_sac --agent.hidden-sizes 32 32 --agent.initial-alpha 0.1
    --env.name toy --env.envs-per-task 4 --env.toy-num-tasks 4
    --loop.steps-per-task 4000 --loop.warmup-steps-per-task 400 --loop.steps-per-iteration 25
    --loop.batch-per-task 32 --loop.replay-per-task 3000 --loop.eval-every-steps-per-task 1000
    --loop.eval-envs-per-task 10 --loop.eval-goals-per-task 10
    --loop.log-every-steps-per-task 200 --loop.checkpoint-every-steps-per-task 300 --wandb.mode disabled
""".split()


def without_timing(records: list[dict]) -> list[dict]:
    return [without_wall_clock(record) for record in records]


def assert_same_run(reference: Path, resumed: Path) -> None:
    """`resumed` logged the same metrics (wall-clock aside) and ended with the same parameters, bit for
    bit, as `reference`."""
    expected, got = without_timing(read_metrics(reference)), without_timing(read_metrics(resumed))
    assert [r["step"] for r in got] == [r["step"] for r in expected]  # nothing missing, nothing twice
    assert got == expected
    config = load_run_config(reference)
    template = wiring.agent_template(
        config, EnvSpec.from_dict(json.loads((reference / "spec.json").read_text()))
    )
    final = checkpoint.latest_step(reference)
    assert checkpoint.latest_step(resumed) == final
    for a, b in zip(
        jax.tree.leaves(checkpoint.restore(reference, template)),
        jax.tree.leaves(checkpoint.restore(resumed, template)),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)

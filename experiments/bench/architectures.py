"""Multi-task architectures at MT10 shapes: parameter counts and SAC updates/s, as ratios to MT-SAC.

Why: CARE, PaCo, Soft Modularization and the hypernetwork trade parameters and compute for task
structure; this puts numbers on both, measured in one process so the ratios are fair. Shapes: obs 49
(39 + one-hot of 10 tasks), action 4, 10 tasks, batch 128 per task (1280), 2 critics, every agent at
its published MT10 defaults (MOORE 4 experts, CARE 4 encoders, PaCo K = 5, SoftMod 2×2 modules,
hypernetwork 256×2 main networks). Updates run in a jitted `lax.scan` after a compiling warm-up call.
`--small` shrinks every network to 64-wide layers and the batch to 32 per task, for a quick check.

Run: `python experiments/bench/architectures.py [--small] [--updates 4] [--rounds 3]`.
"""

from __future__ import annotations

import argparse

import jax
import numpy as np
from mtrl.agents import get_agent
from update_throughput import BATCH_PER_TASK, MT10, SMALL_BATCH_PER_TASK, SMALL_HIDDEN, compile_updates

AGENT_NAMES = ("mt_sac", "mh_sac", "moore_sac", "care_sac", "paco_sac", "softmod_sac", "hyper_sac")
SMALL_OVERRIDES = {  # mt_sac, mh_sac and moore_sac as update_throughput.py --small builds them
    "mt_sac": {"hidden_sizes": SMALL_HIDDEN},
    "mh_sac": {"hidden_sizes": SMALL_HIDDEN},
    "moore_sac": {"hidden_sizes": SMALL_HIDDEN},
    "care_sac": {"hidden_sizes": SMALL_HIDDEN},
    "paco_sac": {"hidden_sizes": SMALL_HIDDEN},
    "softmod_sac": {"hidden_sizes": SMALL_HIDDEN, "module_size": 64, "routing_sizes": (64, 64)},
    "hyper_sac": {"hidden_sizes": SMALL_HIDDEN, "hyper_sizes": (32, 32)},
}


def count(tree) -> int:
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def build(name: str, small: bool):
    """The agent's initial state at MT10 shapes (published defaults, or the small variant)."""
    agent = get_agent(name)
    config = agent.Config(**(SMALL_OVERRIDES[name] if small else {}))
    return agent, agent.init(jax.random.key(0), MT10, config)


def timer(name: str, small: bool, batch_per_task: int, num_updates: int):
    """Compile `num_updates` updates of agent `name`; return (actor, critics) params and a timer."""
    agent, state = build(name, small)
    time_call = compile_updates(name, agent.update, state, batch_per_task, num_updates)
    return (count(state.actor_params), count(state.critic_params)), time_call


def measure(small: bool, batch_per_task: int, num_updates: int, rounds: int):
    """Parameter counts and best-of-`rounds` updates/s; rounds interleave agents against load drift."""
    built = {name: timer(name, small, batch_per_task, num_updates) for name in AGENT_NAMES}
    best = dict.fromkeys(AGENT_NAMES, float("inf"))
    for i in range(rounds):
        for name, (_, time_call) in built.items():
            best[name] = min(best[name], time_call(jax.random.key(2 + i)))
    return {name: (built[name][0], num_updates / best[name]) for name in AGENT_NAMES}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="64-wide networks, batch 32 per task")
    parser.add_argument("--updates", type=int, default=4, help="updates per timed jitted call")
    parser.add_argument("--rounds", type=int, default=3, help="timed calls per agent (best kept)")
    args = parser.parse_args(argv)
    batch_per_task = SMALL_BATCH_PER_TASK if args.small else BATCH_PER_TASK
    nets = "small (64-wide)" if args.small else "published MT10"
    print(
        f"devices: {jax.devices()}; obs {MT10.obs_size}, action {MT10.action_size}, {MT10.num_tasks} tasks, "
        f"batch {MT10.num_tasks * batch_per_task}, {nets} networks"
    )
    results = measure(args.small, batch_per_task, args.updates, args.rounds)
    (base_actor, base_critics), base_rate = results["mt_sac"]
    header = ("agent", "actor params", "critic params", "updates/s", "ms/update", "speed")
    print(f"{header[0]:>12} {header[1]:>17} {header[2]:>18} {header[3]:>10} {header[4]:>10} {header[5]:>8}")
    for name, ((actor, critics), rate) in results.items():
        actor_cell = f"{actor:,} ({actor / base_actor:.1f}x)"
        critic_cell = f"{critics:,} ({critics / base_critics:.1f}x)"
        speed = f"{rate / base_rate:.2f}x"
        print(f"{name:>12} {actor_cell:>17} {critic_cell:>18} {rate:>10.2f} {1000 / rate:>10.1f} {speed:>8}")
    print("ratios are to mt_sac measured in the same run")


if __name__ == "__main__":
    main()

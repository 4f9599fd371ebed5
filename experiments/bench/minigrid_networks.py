"""One PPO update of the MOORE MiniGrid MT3 networks: patch-matmul vs XLA convolutions, same run.

Why: on CPU, XLA's convolution gradients at MiniGrid's tiny shapes (7×7×3 views, 2×2 kernels) are
very slow; `mtrl.conv` writes the convolution as patches + matmul instead. This times one PPO-sized
update with `conv="patches"` and `conv="lax"` (`lax.conv_general_dilated`, the op `flax.linen.Conv`
emits, so it stands for Flax's convolution too) and prints the time per update and their ratio.

The update: MOORE actor (7 logits) and critic (1 output), 3 tasks, 2 experts, multi-head by default;
`--epochs` passes over `--samples` random samples in shuffled minibatches of `--batch` (the remainder
that does not fill a minibatch is dropped), a clipped-surrogate + entropy loss for the actor and a
squared error for the critic, one Adam step each per minibatch; all of it in one jitted call.
Defaults are the paper's size (8 epochs, 6,000 samples, minibatches of 768); `--small`, for a quick check,
makes it 1 epoch over 64 samples in minibatches of 32, timed once (the size flags still apply).

Run: `python experiments/bench/minigrid_networks.py [--small] [--samples 6000] [--epochs 8] [--rounds 2]`.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from mtrl.agents.minigrid_networks import OBS_SIZE, MiniGridNetwork

TASKS, EXPERTS, ACTIONS = 3, 2, 7
CLIP, ENTROPY = 0.2, 0.01
SMALL = {"samples": 64, "epochs": 1, "batch": 32, "rounds": 1}  # the defaults of `--small`


def random_data(samples: int, seed: int = 0) -> dict[str, jax.Array]:
    """A PPO dataset of MiniGrid-like views (integer codes as floats) with random targets."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, [11, 6, 3], size=(samples, 7, 7, 3)).reshape(samples, OBS_SIZE)
    return {
        "obs": jnp.asarray(codes, jnp.float32),
        "task_id": jnp.asarray(rng.integers(0, TASKS, samples), jnp.int32),
        "action": jnp.asarray(rng.integers(0, ACTIONS, samples), jnp.int32),
        "old_log_prob": jnp.asarray(np.log(np.full(samples, 1 / ACTIONS)), jnp.float32),
        "advantage": jnp.asarray(rng.normal(size=samples), jnp.float32),
        "return": jnp.asarray(rng.normal(size=samples), jnp.float32),
    }


def build(conv: str, torso: str, heads: str, samples: int, epochs: int, batch: int):
    """Initial (params, optimiser states) and the jitted update for the given convolution."""
    actor = MiniGridNetwork(TASKS, ACTIONS, torso, heads, EXPERTS, conv=conv)
    critic = MiniGridNetwork(TASKS, 1, torso, heads, EXPERTS, conv=conv)
    optimiser = optax.adam(3e-4)
    data = random_data(8)
    params = (
        actor.init(jax.random.key(0), data["obs"], data["task_id"]),
        critic.init(jax.random.key(1), data["obs"], data["task_id"]),
    )
    state = (params, (optimiser.init(params[0]), optimiser.init(params[1])))
    minibatches = samples // batch
    if minibatches < 1:
        raise ValueError(f"--samples {samples} is smaller than one minibatch of {batch}")

    def actor_loss(p, mb):
        log_probs = jax.nn.log_softmax(actor.apply(p, mb["obs"], mb["task_id"]))
        log_prob = jnp.take_along_axis(log_probs, mb["action"][:, None], axis=1)[:, 0]
        ratio = jnp.exp(log_prob - mb["old_log_prob"])
        clipped = jnp.clip(ratio, 1 - CLIP, 1 + CLIP)
        surrogate = jnp.minimum(ratio * mb["advantage"], clipped * mb["advantage"])
        entropy = -jnp.sum(jnp.exp(log_probs) * log_probs, axis=-1)
        return -jnp.mean(surrogate + ENTROPY * entropy)

    def critic_loss(p, mb):
        return jnp.mean((critic.apply(p, mb["obs"], mb["task_id"])[:, 0] - mb["return"]) ** 2)

    def step(carry, rows, data):
        (actor_p, critic_p), (actor_o, critic_o) = carry
        mb = jax.tree.map(lambda x: x[rows], data)
        a_grad, c_grad = jax.grad(actor_loss)(actor_p, mb), jax.grad(critic_loss)(critic_p, mb)
        a_up, actor_o = optimiser.update(a_grad, actor_o, actor_p)
        c_up, critic_o = optimiser.update(c_grad, critic_o, critic_p)
        params = (optax.apply_updates(actor_p, a_up), optax.apply_updates(critic_p, c_up))
        return (params, (actor_o, critic_o)), None

    @jax.jit
    def update(state, data, key):
        def epoch(carry, epoch_key):
            order = jax.random.permutation(epoch_key, samples)[: minibatches * batch]
            carry, _ = jax.lax.scan(lambda c, r: step(c, r, data), carry, order.reshape(minibatches, batch))
            return carry, None

        state, _ = jax.lax.scan(epoch, state, jax.random.split(key, epochs))
        return state

    return state, update


def measure(args) -> dict[str, tuple[float, float]]:
    """Per convolution: (compile + first call, best of `rounds` timed calls), in seconds."""
    data = random_data(args.samples, seed=1)
    results = {}
    for conv in ("patches", "lax"):
        state, update = build(conv, args.torso, args.heads, args.samples, args.epochs, args.batch)
        start = time.perf_counter()
        jax.block_until_ready(update(state, data, jax.random.key(0)))
        first = time.perf_counter() - start
        best = float("inf")
        for i in range(args.rounds):
            start = time.perf_counter()
            jax.block_until_ready(update(state, data, jax.random.key(1 + i)))
            best = min(best, time.perf_counter() - start)
        results[conv] = (first, best)
        print(f"  {conv:>8}: first call (with compile) {first:8.2f} s, update {best:8.3f} s", flush=True)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="1 epoch, 64 samples, batch 32, 1 round")
    parser.add_argument("--samples", type=int, default=6000, help="samples per update")
    parser.add_argument("--epochs", type=int, default=8, help="passes over the samples per update")
    parser.add_argument("--batch", type=int, default=768, help="minibatch size")
    parser.add_argument("--rounds", type=int, default=2, help="timed calls per convolution (best kept)")
    parser.add_argument("--torso", default="moore", choices=("moore", "moe", "shared"))
    parser.add_argument("--heads", default="multi", choices=("multi", "single"))
    args = parser.parse_args(argv)
    if args.small:  # smaller defaults; flags given explicitly still win
        parser.set_defaults(**SMALL)
        args = parser.parse_args(argv)
    minibatches = args.samples // args.batch
    print(
        f"devices: {jax.devices()}; {args.torso} torso, {args.heads} heads, {TASKS} tasks, "
        f"{EXPERTS} experts; {args.epochs} epochs × {minibatches} minibatches of {args.batch} "
        f"= {args.epochs * minibatches} Adam steps"
    )
    results = measure(args)
    patches, lax = results["patches"][1], results["lax"][1]
    print(f"time per update: patches {patches:.3f} s, lax {lax:.3f} s; lax / patches = {lax / patches:.1f}x")


if __name__ == "__main__":
    main()

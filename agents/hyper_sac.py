"""Hyper-SAC: a hypernetwork turns each task's representation into the weights of its network.

In the spirit of Rezaei-Shoshtari, Morissette, Hogan, Dudek & Meger, "Hypernetworks for Zero-Shot
Transfer in Reinforcement Learning", AAAI 2023 (arXiv:2211.15457): the task's representation e_τ (a
learned embedding of its id, or a text embedding) goes through a hypernetwork MLP to
h_τ = LayerNorm(MLP(e_τ)), and linear heads turn h_τ into the kernel and bias of every layer of the
main network, a plain ReLU MLP that reads the state (for the critic, concat(obs, action)).

Initialisation (hyperfan-in, Chang, Flokas & Lipson, "Principled Weight Initialization for
Hypernetworks", ICLR 2020, §4): a generated kernel entry is W_io = Σ_j H[io, j] h_j. The LayerNorm
(no learned scale or offset) makes Σ_j h_j² = m exactly (m = the hypernetwork's last width), so
kernel heads drawn with Var(H) = 1 / (m · fan_in) give Var(W_io) = 1 / fan_in: each task's main
network starts distributed like a lecun-normal MLP. Bias heads start at zero, as Dense biases do.

The hypernetwork runs on the `[tasks, dim]` table of task representations, not per row; the main
network then computes every task's output for every row (one batched matmul) and keeps each row's
own: `tasks`× the FLOPs of one MLP in plain matmuls, where gathering a `[batch, in, out]` kernel per row
would move 0.3 GB per layer at MT10 shapes.
Defaults (ours; the paper's DMC setups differ): main 256×2, embedding 32, hypernetwork 128×2.
"""

from __future__ import annotations

import dataclasses
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from mtrl.types import AgentTraits, EnvSpec

from . import sac, task_encoders
from .sac import SACConfig

TRAITS = AgentTraits(loop="replay", wired_fields=("task_table",))
"""What the wiring reads about this agent (`mtrl.types.AgentTraits`)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config(SACConfig):
    """Hypernetwork SAC: main networks 256×2 generated from a 32-d task embedding by a 128×2 MLP."""

    one_hot_input: bool = False
    """The generated main network reads the state only; the task enters through the generated weights.
    True feeds it the one-hot too (ablation)."""
    hidden_sizes: tuple[int, ...] = (256, 256)
    """Hidden widths of the generated main networks (actor and critics)."""
    hyper_sizes: tuple[int, ...] = (128, 128)
    """ReLU layers of the hypernetwork trunk; the last width is m of the init rule."""
    task_embedding: str = "learned"
    """'learned' (an embedding of the task id) or 'text' (sentence embeddings of task descriptions)."""
    task_table: task_encoders.TaskTable | None = None
    """For 'text': the `[num_tasks, dim]` embeddings, filled by the wiring (a wired field: no flag)."""
    embedding_size: int = 32
    """Size of the learned task embedding (ignored for 'text')."""

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "hyper_sizes", tuple(self.hyper_sizes))
        if not self.hyper_sizes or min(self.hyper_sizes) < 1:
            raise ValueError(f"hyper_sizes must be non-empty positive widths, got {self.hyper_sizes}")
        if self.embedding_size < 1:
            raise ValueError(f"embedding_size must be >= 1, got {self.embedding_size}")
        task_encoders.check_task_embedding(self.task_embedding)


def hyperfan_in(fan_in: int) -> nn.initializers.Initializer:
    """Normal init of a kernel head with Var = 1 / (m · fan_in), m = the head's input width."""

    def init(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
        m = shape[0]
        return jax.random.normal(key, shape, dtype) / math.sqrt(m * fan_in)

    return init


class HyperNetwork(nn.Module):
    """Task representations `[tasks, dim]` -> every layer's kernel `[tasks, in, out]` and bias."""

    layer_shapes: tuple[tuple[int, int], ...]
    hyper_sizes: tuple[int, ...]

    @nn.compact
    def __call__(self, e: Float[Array, "tasks dim"]) -> list[tuple[jax.Array, jax.Array]]:
        h = e
        for i, size in enumerate(self.hyper_sizes):
            h = nn.relu(nn.Dense(size, name=f"trunk_{i}")(h))
        h = nn.LayerNorm(use_scale=False, use_bias=False, name="norm")(h)
        layers = []
        for i, (fan_in, fan_out) in enumerate(self.layer_shapes):
            kernel = nn.Dense(fan_in * fan_out, kernel_init=hyperfan_in(fan_in), name=f"kernel_{i}")(h)
            bias = nn.Dense(fan_out, kernel_init=nn.initializers.zeros_init(), name=f"bias_{i}")(h)
            layers.append((kernel.reshape(-1, fan_in, fan_out), bias))
        return layers


class Network(nn.Module):
    """The hypernetwork torso; `generated` returns each task's main-network params."""

    hidden_sizes: tuple[int, ...]
    output_size: int
    num_tasks: int
    hyper_sizes: tuple[int, ...]
    embedding_size: int = 32
    task_table: tuple[tuple[float, ...], ...] | None = None

    def layer_shapes(self, input_size: int) -> tuple[tuple[int, int], ...]:
        sizes = (input_size, *self.hidden_sizes, self.output_size)
        return tuple(zip(sizes[:-1], sizes[1:], strict=True))

    @nn.compact
    def generated(self, input_size: int) -> list[tuple[jax.Array, jax.Array]]:
        """Every task's main-network layers: `[(kernel [tasks, in, out], bias [tasks, out]), ...]`."""
        task_ids = jnp.arange(self.num_tasks)
        e = task_encoders.TaskEmbedding(
            self.num_tasks, self.embedding_size, self.task_table, name="task_embedding"
        )(task_ids)
        return HyperNetwork(self.layer_shapes(input_size), self.hyper_sizes, name="hyper")(e)

    def __call__(
        self, x: Float[Array, "batch inputs"], task_id: Int[Array, " batch"]
    ) -> Float[Array, "batch outputs"]:
        layers = self.generated(x.shape[-1])
        kernel, bias = layers[0]
        h = jnp.einsum("bi,tio->bto", x, kernel) + bias  # every task's first layer on every row
        for kernel, bias in layers[1:]:
            h = jnp.einsum("bti,tio->bto", nn.relu(h), kernel) + bias
        return jnp.take_along_axis(h, task_id[:, None, None], axis=1)[:, 0]


def torso(spec: EnvSpec, config: Config, output_size: int) -> Network:
    """Actor and critics each have their own hypernetwork and task embedding."""
    return Network(
        hidden_sizes=config.hidden_sizes,
        output_size=output_size,
        num_tasks=spec.num_tasks,
        hyper_sizes=config.hyper_sizes,
        embedding_size=config.embedding_size,
        task_table=task_encoders.fixed_table(config.task_embedding, config.task_table, spec.task_names),
    )


make_networks, init, act, update = sac.sac_agent(torso)

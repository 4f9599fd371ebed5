"""CARE-SAC: SAC whose torsos encode the state with a task-attended mixture of encoders.

Sodhani, Zhang & Pineau, "Multi-Task Reinforcement Learning with Context-based Representations",
ICML 2021 (arXiv:2102.06177), §4. Per row:
  z_τ = context encoder(task representation)              (learned id embedding, or text embedding)
  α = softmax(attention MLP(stop_gradient(z_τ)) / T)      (k weights; z detached, as the authors' code)
  h = Σ_j α_j encoder_j(s)                                (mixture of k encoders)
  out = MLP(concat(h, z_τ))                               (the usual SAC actor / critic MLP)
The critic's encoders read concat(obs, action) (the shared torso signature). MT10 defaults follow the
authors' released MT10 command (k = 4; encoders 2 layers of 50; context MLP 50-50, output 50;
400×3 actor/critic; batch 1280) — some re-implementations use k = 6.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from mtrl.networks import MLP, StackedMLP
from mtrl.types import AgentTraits, EnvSpec

from . import sac, task_encoders
from .sac import SACConfig

TRAITS = AgentTraits(loop="replay", wired_fields=("task_table",))
"""What the wiring reads about this agent (`mtrl.types.AgentTraits`)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config(SACConfig):
    """CARE on MT10: 4 encoders of 50-50, a 50-d context, 400×3 networks, the MT-SAC learning rates."""

    one_hot_input: bool = False
    """Encoders read the state only; the task enters through the context (authors' code). True feeds
    them the one-hot too (ablation)."""
    num_encoders: int = 4
    """Encoders k in the mixture (authors' MT10 command: 4)."""
    encoder_sizes: tuple[int, ...] = (50, 50)
    """Layers of each state encoder; the last is the encoding size."""
    context_sizes: tuple[int, ...] = (50, 50)
    """Layers of the context (task) encoder; the last is the size of z_τ."""
    attention_hidden: int = 50
    """Hidden width of the MLP that maps z_τ to the k attention logits."""
    attention_temperature: float = 1.0
    """Softmax temperature of the attention over encoders."""
    task_embedding: str = "learned"
    """'learned' (an embedding of the task id) or 'text' (sentence embeddings of task descriptions)."""
    task_table: task_encoders.TaskTable | None = None
    """For 'text': the `[num_tasks, dim]` embeddings, filled by the wiring (a wired field: no flag)."""
    embedding_size: int = 50
    """Size of the learned task embedding (ignored for 'text', whose size is the encoder's)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("encoder_sizes", "context_sizes"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
            if not getattr(self, name) or min(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be non-empty positive widths, got {getattr(self, name)}")
        if self.num_encoders < 1:
            raise ValueError(f"num_encoders must be >= 1, got {self.num_encoders}")
        if self.attention_hidden < 1 or self.embedding_size < 1:
            raise ValueError(
                f"attention_hidden ({self.attention_hidden}) and embedding_size ({self.embedding_size}) "
                "must be >= 1"
            )
        if self.attention_temperature <= 0:
            raise ValueError(f"attention_temperature must be > 0, got {self.attention_temperature}")
        task_encoders.check_task_embedding(self.task_embedding)


class Network(nn.Module):
    """The CARE torso. Sows the attention weights `[batch, k]` ("attention_weights") for inspection."""

    hidden_sizes: tuple[int, ...]
    output_size: int
    num_tasks: int
    num_encoders: int
    encoder_sizes: tuple[int, ...]
    context_sizes: tuple[int, ...]
    attention_hidden: int
    attention_temperature: float = 1.0
    embedding_size: int = 50
    task_table: tuple[tuple[float, ...], ...] | None = None

    @nn.compact
    def __call__(
        self, x: Float[Array, "batch inputs"], task_id: Int[Array, " batch"]
    ) -> Float[Array, "batch outputs"]:
        if self.num_encoders < 1:
            raise ValueError(f"num_encoders must be >= 1, got {self.num_encoders}")
        task = task_encoders.TaskEmbedding(
            self.num_tasks, self.embedding_size, self.task_table, name="task_embedding"
        )(task_id)
        context = MLP(self.context_sizes, name="context_encoder")(task)
        logits = MLP((self.attention_hidden, self.num_encoders), name="attention")(
            jax.lax.stop_gradient(context)
        )
        attention = jax.nn.softmax(logits / self.attention_temperature, axis=-1)
        self.sow("intermediates", "attention_weights", attention)
        encodings = StackedMLP(self.num_encoders, self.encoder_sizes, name="encoders")(x)
        mixed = jnp.einsum("bk,bkd->bd", attention, encodings)
        features = jnp.concatenate([mixed, context], axis=-1)
        return MLP((*self.hidden_sizes, self.output_size), name="mlp")(features)


def torso(spec: EnvSpec, config: Config, output_size: int) -> Network:
    """Actor and critics are CARE networks sharing the architecture, not the parameters."""
    return Network(
        hidden_sizes=config.hidden_sizes,
        output_size=output_size,
        num_tasks=spec.num_tasks,
        num_encoders=config.num_encoders,
        encoder_sizes=config.encoder_sizes,
        context_sizes=config.context_sizes,
        attention_hidden=config.attention_hidden,
        attention_temperature=config.attention_temperature,
        embedding_size=config.embedding_size,
        task_table=task_encoders.fixed_table(config.task_embedding, config.task_table, spec.task_names),
    )


make_networks, init, act, update = sac.sac_agent(torso)

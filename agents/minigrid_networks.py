"""The networks of the MOORE paper's MiniGrid PPO agents (actor and critic alike).

Hendawy et al., "Multi-Task Reinforcement Learning with Mixture of Orthogonal Experts", ICLR 2024;
matched to the authors' `moore/utils/networks_ppo.py` (MiniGridPPO{SH,MH}Network and
MiniGridPPOMixture{MH,SH}Network) and `moore/utils/mixture_layers.py`.

The input is MiniGrid's 7×7×3 egocentric image, raw integer codes as floats (no scaling). Each CNN
is three 2×2 convolutions 3→16→32→64 with ReLU between them, giving 4·4·64 = 1024 features. Torsos:

- "moore": k expert CNNs on the same image, no activation after their last convolution; per
  sample their k feature vectors are orthonormalised by Gram-Schmidt (`OrthogonalLayer1D`), mixed
  with task weights w = W·one_hot(task) (a bias-free linear layer, no softmax) and passed through tanh.
- "moe": the same without Gram-Schmidt (the paper's MoE baseline, `orthogonal=False`).
- "shared": one CNN with tanh after its last convolution (the MT-PPO baselines).

Heads: "multi" = per task Linear(1024→128) Tanh Linear(128→out); "single" = one
Linear(1024+T→128) Tanh Linear(128→out) on concat(features, one_hot(task)).

Layout note: the authors feed the image to `nn.Conv2d` as (channel, x, y) and flatten in that order;
here it is NHWC with H = x, W = y and the flattening order is (x, y, channel). The 1024 features are
the same up to a fixed permutation, which neither the Gram-Schmidt step (permutation-invariant inner
products) nor the heads' i.i.d. initialisation can tell apart.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from mtrl.conv import IMPLEMENTATIONS, Conv2D
from mtrl.networks import gram_schmidt, uniform_fan_in

IMAGE_SHAPE = (7, 7, 3)
"""MiniGrid's egocentric view: (x, y, channel), channels = (object, colour, state) codes."""
OBS_SIZE = 7 * 7 * 3
CHANNELS = (16, 32, 64)
KERNEL = (2, 2)
FEATURES = 4 * 4 * 64
TORSOS = ("moore", "moe", "shared")
HEADS = ("multi", "single")


def _check(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not one of {choices}")


class MiniGridCNN(nn.Module):
    """Conv 2×2 (→16) ReLU, Conv 2×2 (→32) ReLU, Conv 2×2 (→64) [tanh], flattened to 1024 features."""

    final_tanh: bool
    conv: str = "patches"
    torch_init: bool = True

    @nn.compact
    def __call__(self, image: Float[Array, "batch 7 7 3"]) -> Float[Array, "batch 1024"]:
        x = image
        for i, channels in enumerate(CHANNELS):
            x = Conv2D(channels, KERNEL, self.torch_init, self.conv, name=f"conv_{i}")(x)
            if i < len(CHANNELS) - 1:
                x = nn.relu(x)
        if self.final_tanh:
            x = jnp.tanh(x)
        return x.reshape(x.shape[0], -1)


class TaskHeads(nn.Module):
    """One Linear(in→hidden) Tanh Linear(hidden→out) per task; row b goes through head task_id[b].

    Every head's hidden layer is computed for every row in one einsum (one `[in, T·hidden]` matmul)
    and the row's own is gathered; no per-row gather of a `[in, hidden]` kernel. This costs T
    times a single head's hidden layer, which for a handful of tasks is cheaper than routing rows.
    """

    num_tasks: int
    hidden: int
    outputs: int
    torch_init: bool = True

    @nn.compact
    def __call__(
        self, x: Float[Array, "batch inputs"], task_id: Int[Array, " batch"]
    ) -> Float[Array, "batch outputs"]:
        tasks, inputs = self.num_tasks, x.shape[-1]

        def inits(fan_in: int):
            if self.torch_init:
                return uniform_fan_in(fan_in), uniform_fan_in(fan_in)
            return nn.initializers.lecun_normal(batch_axis=(0,)), nn.initializers.zeros_init()

        kernel_init, bias_init = inits(inputs)
        hidden_kernel = self.param("hidden_kernel", kernel_init, (tasks, inputs, self.hidden))
        hidden_bias = self.param("hidden_bias", bias_init, (tasks, self.hidden))
        kernel_init, bias_init = inits(self.hidden)
        out_kernel = self.param("out_kernel", kernel_init, (tasks, self.hidden, self.outputs))
        out_bias = self.param("out_bias", bias_init, (tasks, self.outputs))

        every_head = jnp.einsum("bi,tih->bth", x, hidden_kernel)
        own = jnp.take_along_axis(every_head, task_id[:, None, None], axis=1)[:, 0]
        hidden = jnp.tanh(own + hidden_bias[task_id])
        every_out = jnp.einsum("bh,tho->bto", hidden, out_kernel)
        return jnp.take_along_axis(every_out, task_id[:, None, None], axis=1)[:, 0] + out_bias[task_id]


class MiniGridNetwork(nn.Module):
    """A MiniGrid PPO actor or critic: CNN torso ("moore" | "moe" | "shared") and heads ("multi" | "single").

    With `authors_init` (default) every layer starts as PyTorch's default, U(±1/√fan_in) for weights
    and biases (fan_in = in_channels·kh·kw for convolutions, num_tasks for the task weights): the
    authors' PPO networks call no initialiser, and `ParallelLayer` calls `reset_parameters()` on each
    expert copy. False: Flax's defaults (lecun-normal, zero biases).

    Sows the raw expert features `[batch, k, 1024]` ("expert_outputs"), the orthonormalised ones
    ("expert_features", MOORE only) and the torso output `[batch, 1024]` ("representation") into the
    "intermediates" collection; see `intermediates`.
    """

    num_tasks: int
    outputs: int
    torso: str
    heads: str
    num_experts: int = 2
    head_hidden: int = 128
    conv: str = "patches"
    authors_init: bool = True

    def __post_init__(self) -> None:
        _check("torso", self.torso, TORSOS)
        _check("heads", self.heads, HEADS)
        _check("conv", self.conv, IMPLEMENTATIONS)
        if self.num_tasks < 1:
            raise ValueError(f"num_tasks={self.num_tasks} must be at least 1")
        if self.torso != "shared" and not 1 <= self.num_experts <= FEATURES:
            raise ValueError(f"num_experts={self.num_experts} must be between 1 and {FEATURES}")
        super().__post_init__()

    @nn.compact
    def __call__(
        self, obs: Float[Array, "*batch 147"], task_id: Int[Array, " *batch"]
    ) -> Float[Array, "*batch outputs"]:
        if obs.shape[-1] != OBS_SIZE:
            raise ValueError(f"obs has {obs.shape[-1]} values per row, expected {OBS_SIZE} (7×7×3)")
        lead = obs.shape[:-1]
        image = obs.reshape(-1, *IMAGE_SHAPE)
        task_id = task_id.reshape(-1)
        one_hot = jax.nn.one_hot(task_id, self.num_tasks, dtype=image.dtype)

        if self.torso == "shared":
            features = MiniGridCNN(True, self.conv, self.authors_init, name="cnn")(image)
        else:
            experts = nn.vmap(
                MiniGridCNN,
                variable_axes={"params": 0},
                split_rngs={"params": True},
                in_axes=None,
                out_axes=1,
                axis_size=self.num_experts,
            )(False, self.conv, self.authors_init, name="experts")(image)
            self.sow("intermediates", "expert_outputs", experts)
            if self.torso == "moore":
                experts = gram_schmidt(experts)
                self.sow("intermediates", "expert_features", experts)
            init = uniform_fan_in(self.num_tasks) if self.authors_init else nn.initializers.lecun_normal()
            weights = nn.Dense(self.num_experts, use_bias=False, kernel_init=init, name="task_weights")(
                one_hot
            )
            features = jnp.tanh(jnp.einsum("bk,bkd->bd", weights, experts))
        self.sow("intermediates", "representation", features)

        if self.heads == "multi":
            out = TaskHeads(self.num_tasks, self.head_hidden, self.outputs, self.authors_init, name="heads")(
                features, task_id
            )
        else:
            x = jnp.concatenate([features, one_hot], axis=-1)
            for name, size, activate in (("hidden", self.head_hidden, True), ("out", self.outputs, False)):
                if self.authors_init:
                    init = uniform_fan_in(x.shape[-1])
                    x = nn.Dense(size, kernel_init=init, bias_init=init, name=name)(x)
                else:
                    x = nn.Dense(size, name=name)(x)
                if activate:
                    x = jnp.tanh(x)
            out = x
        return out.reshape(*lead, self.outputs)


def intermediates(
    network: MiniGridNetwork, params, obs: Float[Array, "*batch 147"], task_id: Int[Array, " *batch"]
) -> dict[str, jax.Array]:
    """The sown intermediates of one forward pass, e.g. `["expert_features"]`, `[batch, k, 1024]`."""
    _, state = network.apply(params, obs, task_id, mutable=["intermediates"])
    return {name: values[0] for name, values in state["intermediates"].items()}

"""Generic Flax building blocks that agents assemble into their networks.

Every module here is a frozen, hashable dataclass, so a built network can sit in a static field of
an agent state. Task routing is explicit: task-dependent modules take an integer id per row.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int


def uniform_fan_in(fan_in: int) -> nn.initializers.Initializer:
    """U(−1/√fan_in, 1/√fan_in): PyTorch's default for an `nn.Linear`'s weight and bias alike.

    (Its weight init, kaiming-uniform with a = √5, has bound gain·√(3/fan_in) with gain = √(2/(1+5)),
    which is 1/√fan_in.) For networks whose reference starts them so.
    """
    bound = 1.0 / math.sqrt(fan_in)

    def init(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


class MLP(nn.Module):
    """Dense layers of `layer_sizes`, ReLU between them; the last is linear unless told.

    Weights start as Flax's default (lecun-normal, zero bias), or as PyTorch's (`torch_init`,
    `uniform_fan_in` for weights and biases) for networks ported from PyTorch references.
    """

    layer_sizes: tuple[int, ...]
    activate_final: bool = False
    torch_init: bool = False

    @nn.compact
    def __call__(self, x: Float[Array, "batch inputs"]) -> Float[Array, "batch outputs"]:
        for i, size in enumerate(self.layer_sizes):
            if self.torch_init:
                init = uniform_fan_in(x.shape[-1])
                x = nn.Dense(size, kernel_init=init, bias_init=init, name=f"dense_{i}")(x)
            else:
                x = nn.Dense(size, name=f"dense_{i}")(x)
            if i < len(self.layer_sizes) - 1 or self.activate_final:
                x = nn.relu(x)
        return x


class StackedMLP(nn.Module):
    """`num` independent MLPs on the same input, parameters stacked on a leading axis.

    One batched matmul per layer instead of a Python list of modules: k experts, one kernel each.
    """

    num: int
    layer_sizes: tuple[int, ...]
    activate_final: bool = False
    torch_init: bool = False

    @nn.compact
    def __call__(self, x: Float[Array, "batch inputs"]) -> Float[Array, "batch num outputs"]:
        stacked = nn.vmap(
            MLP,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            in_axes=None,
            out_axes=1,
            axis_size=self.num,
        )
        return stacked(self.layer_sizes, self.activate_final, self.torch_init, name="mlps")(x)


class MultiHeadDense(nn.Module):
    """One linear layer per head; row `b` goes through head `head_id[b]`.

    All heads are computed with one einsum and the right one gathered: for the small output widths
    of policies and critics this is cheaper than gathering a `[batch, in, out]` kernel per row.
    """

    num_heads: int
    features: int
    torch_init: bool = False
    """Xavier-uniform kernels and U(±1/√fan_in) biases (a PyTorch `nn.Linear` re-initialised with
    `xavier_uniform_`); default: Flax's lecun-normal kernels and zero biases."""

    @nn.compact
    def __call__(
        self, x: Float[Array, "batch inputs"], head_id: Int[Array, " batch"]
    ) -> Float[Array, "batch features"]:
        if self.torch_init:
            kernel_init = nn.initializers.xavier_uniform(batch_axis=(0,))
            bias_init = uniform_fan_in(x.shape[-1])
        else:
            kernel_init = nn.initializers.lecun_normal(batch_axis=(0,))
            bias_init = nn.initializers.zeros_init()
        kernel = self.param("kernel", kernel_init, (self.num_heads, x.shape[-1], self.features))
        bias = self.param("bias", bias_init, (self.num_heads, self.features))
        every_head = jnp.einsum("bi,hio->bho", x, kernel) + bias
        return jnp.take_along_axis(every_head, head_id[:, None, None], axis=1)[:, 0]


def gram_schmidt(vectors: Float[Array, "*batch k d"], eps: float = 1e-12) -> Float[Array, "*batch k d"]:
    """Orthonormalise the k rows of each `[k, d]` matrix in order (classical Gram-Schmidt).

    Row i keeps the direction of `vectors[i]` minus its projections on the earlier basis rows. The
    norm is `sqrt(|w|² + eps)`, so a zero (or dependent) row gives a zero row with finite gradients
    instead of NaN.
    """
    k = vectors.shape[-2]
    basis: list[jax.Array] = []
    for i in range(k):
        v = vectors[..., i, :]
        if basis:
            done = jnp.stack(basis, axis=-2)
            coefficients = jnp.einsum("...d,...jd->...j", v, done)
            v = v - jnp.einsum("...j,...jd->...d", coefficients, done)
        basis.append(v * jax.lax.rsqrt(jnp.sum(v * v, axis=-1, keepdims=True) + eps))
    return jnp.stack(basis, axis=-2)

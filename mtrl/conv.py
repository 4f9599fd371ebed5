"""Valid, stride-1 2-D convolutions (NHWC) for the small images of grid worlds.

Why this exists: on CPU, XLA's convolution *gradients* are pathologically slow at tiny shapes such as
MiniGrid's 7×7×3 views with 2×2 kernels (one PPO update of a MOORE MiniGrid agent took 173 s with
Flax's `nn.Conv` against 6.3 s with the same convolutions written as matmuls). `conv2d_patches`
writes the convolution as patch extraction (the kh·kw shifted views of the image, concatenated on
the channel axis) followed by one matmul with the kernel reshaped to `[kh·kw·C, O]`; its gradients are
matmuls, slices and pads, which XLA:CPU handles well. `conv2d_lax` is the same layer through
`jax.lax.conv_general_dilated` (what `flax.linen.Conv` calls), the better choice on GPUs.

Kernels are HWIO (`[kh, kw, in, out]`), as in `flax.linen.Conv`, so parameters are interchangeable.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from mtrl.networks import uniform_fan_in

IMPLEMENTATIONS = ("patches", "lax")


def check_implementation(implementation: str) -> None:
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"conv implementation {implementation!r} is not one of {IMPLEMENTATIONS}")


def conv2d_patches(
    x: Float[Array, "*batch height width in"], kernel: Float[Array, "kh kw in out"]
) -> Float[Array, "*batch out_height out_width out"]:
    """Valid, stride-1 convolution as shifted slices concatenated on the channel axis and one matmul.

    The patch channel index is (i·kw + j)·C + c for kernel offset (i, j) and input channel c, which is
    exactly the row index of the HWIO kernel reshaped to `[kh·kw·C, O]`.
    """
    kh, kw, channels, features = kernel.shape
    height, width = x.shape[-3], x.shape[-2]
    if x.shape[-1] != channels:
        raise ValueError(f"input has {x.shape[-1]} channels, the kernel expects {channels}")
    out_h, out_w = height - kh + 1, width - kw + 1
    if out_h < 1 or out_w < 1:
        raise ValueError(f"kernel {kh}×{kw} is larger than the {height}×{width} input")
    shifted = [x[..., i : i + out_h, j : j + out_w, :] for i in range(kh) for j in range(kw)]
    patches = shifted[0] if len(shifted) == 1 else jnp.concatenate(shifted, axis=-1)
    return patches @ kernel.reshape(kh * kw * channels, features)


def conv2d_lax(
    x: Float[Array, "*batch height width in"], kernel: Float[Array, "kh kw in out"]
) -> Float[Array, "*batch out_height out_width out"]:
    """The same convolution through `lax.conv_general_dilated`; leading batch axes are flattened."""
    lead = x.shape[:-3]
    flat = x.reshape((-1, *x.shape[-3:]))
    y = jax.lax.conv_general_dilated(
        flat, kernel, window_strides=(1, 1), padding="VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    return y.reshape((*lead, *y.shape[1:]))


def conv2d(
    x: Float[Array, "*batch height width in"], kernel: Float[Array, "kh kw in out"], implementation: str
) -> Float[Array, "*batch out_height out_width out"]:
    """Valid, stride-1 convolution by `implementation` ("patches" | "lax"); both give the same values."""
    check_implementation(implementation)
    return conv2d_patches(x, kernel) if implementation == "patches" else conv2d_lax(x, kernel)


class Conv2D(nn.Module):
    """A valid, stride-1 convolution layer with bias; parameters named and shaped as `nn.Conv`'s.

    `torch_init`: weights and biases U(±1/√fan_in) with fan_in = kh·kw·in, PyTorch's `nn.Conv2d`
    default (its kaiming-uniform with a = √5 has that bound); otherwise Flax's defaults (lecun-normal
    kernel over the same fan-in, zero bias).
    """

    features: int
    kernel_size: tuple[int, int]
    torch_init: bool = False
    implementation: str = "patches"

    def __post_init__(self) -> None:
        check_implementation(self.implementation)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: Float[Array, "*batch height width in"]) -> Float[Array, "*batch oh ow out"]:
        kh, kw = self.kernel_size
        channels = x.shape[-1]
        if self.torch_init:
            kernel_init = bias_init = uniform_fan_in(kh * kw * channels)
        else:
            kernel_init, bias_init = nn.initializers.lecun_normal(), nn.initializers.zeros_init()
        kernel = self.param("kernel", kernel_init, (kh, kw, channels, self.features))
        bias = self.param("bias", bias_init, (self.features,))
        return conv2d(x, kernel, self.implementation) + bias

"""The inference network's belief q(z|c) (Sec. 4.1): context features, the product of Gaussian factors with
the unit prior, its KL to the prior, and reparameterised draws of z."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from mtrl.types import PyTree, Transition

from .config import Config
from .networks import Networks


def context_features(tr: Transition, use_next_obs: bool) -> Float[Array, "... features"]:
    """c_n = (s, a, r[, s']) with the raw (unscaled) reward, as PEARL's code feeds its encoder."""
    parts = [tr.obs, tr.action, tr.reward[..., None]] + ([tr.next_obs] if use_next_obs else [])
    return jnp.concatenate(parts, axis=-1)


def product_of_gaussians(
    mu: Float[Array, "*b n latent"], var: Float[Array, "*b n latent"], mask: Float[Array, "*b n"]
) -> tuple[Float[Array, "*b latent"], Float[Array, "*b latent"]]:
    """N(0, I) Π_n N(μ_n, σ²_n)^{m_n}, normalised: σ² = 1 / (1 + Σ m_n/σ²_n), μ = σ² Σ m_n μ_n/σ²_n."""
    precision = mask[..., None] / var
    posterior_var = 1.0 / (1.0 + precision.sum(-2))
    return posterior_var * (precision * mu).sum(-2), posterior_var


def posterior(
    networks: Networks, encoder_params: PyTree, features: Float[Array, "*b n f"], mask: Float[Array, "*b n"],
    config: Config,
) -> tuple[Float[Array, "*b latent"], Float[Array, "*b latent"]]:  # fmt: skip
    """q(z|c): each transition's factor from the encoder (σ²_n = softplus, floored), then their product."""
    out = networks.encoder.apply(encoder_params, features)
    mu, raw = jnp.split(out, 2, axis=-1)
    return product_of_gaussians(mu, jnp.maximum(jax.nn.softplus(raw), config.min_factor_var), mask)


def kl_to_prior(mean: Float[Array, "*b latent"], var: Float[Array, "*b latent"]) -> Float[Array, "*b"]:
    """KL(N(μ, diag σ²) ‖ N(0, I)) = ½ Σ (σ² + μ² − 1 − log σ²)."""
    return 0.5 * jnp.sum(var + mean**2 - 1.0 - jnp.log(var), axis=-1)


def sample_latent(mean: jax.Array, var: jax.Array, key: jax.Array) -> jax.Array:
    """Reparameterised z = μ + σ ε."""
    return mean + jnp.sqrt(var) * jax.random.normal(key, mean.shape, mean.dtype)

"""PEARL's hyperparameters, checked once, and the episode counts derived from them."""

from __future__ import annotations

import dataclasses

from mtrl.types import EnvSpec


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config:
    """Defaults: garage's PEARL Meta-World ML10 recipe (`pearl_metaworld_ml10.py`, PEARL class defaults in
    `garage/torch/algos/pearl.py`); its ML1 script differs in num_initial_steps 15000, meta_batch 16,
    40 steps per epoch. Episode counts are garage's step counts / 500 (Meta-World's episode length)."""

    latent_size: int = 7
    """Size of z (garage ML10/ML1: latent_size=7)."""
    hidden_sizes: tuple[int, ...] = (300, 300, 300)
    """Actor, twin Q and V hidden widths (garage: net_size=300, three layers)."""
    encoder_hidden_sizes: tuple[int, ...] = (200, 200, 200)
    """Context encoder hidden widths (garage: encoder_hidden_size=200, three layers)."""
    prior_episodes: int = 5
    """Episodes per goal and iteration with z ~ prior, stored in both buffers (num_steps_prior=2500)."""
    posterior_episodes: int = 0
    """Episodes with z ~ q(z|c) stored in both buffers (garage num_steps_posterior default 0)."""
    extra_posterior_episodes: int = 5
    """Episodes with z ~ q(z|c) for the RL buffer only (num_extra_rl_steps_posterior=2500)."""
    warmup_iterations: int = 1
    """First iterations that collect every episode with the prior (num_initial_steps=5000: 10 episodes)."""
    updates_per_iteration: int = 60
    """Gradient steps per iteration (garage num_steps_per_epoch: 60 on ML10, 40 on ML1)."""
    meta_batch_size: int = 10
    """Goals per gradient step (garage meta_batch_size: 10 on ML10, 16 on ML1)."""
    batch_size: int = 1000
    """RL transitions per goal in a gradient step (garage batch_size=1000)."""
    embedding_batch_size: int = 250
    """Context transitions per goal (garage embedding_batch_size=250)."""
    replay_capacity_per_goal: int = 5000
    """RL transitions kept per (task, goal) slot. garage keeps 1e6 (ML1: 5e6) per training goal but trains on
    only 10 (ML1: 15) fixed goals; we keep all 50 goals of every task, so 5000 (one visit of 10 episodes)
    keeps ML10 at ~0.85 GB (4 bytes × 85 floats × 500 slots × 5000)."""
    reward_scale: float = 1000.0
    """Multiplies rewards in the Q target; the entropy weight is 1 (garage reward_scale=1000)."""
    kl_lambda: float = 0.1
    """Weight of KL(q(z|c) ‖ N(0, I)) in the encoder's loss (garage/PEARL kl_lambda=0.1)."""
    actor_lr: float = 3e-4
    """Adam rate of the policy (garage policy_lr=3e-4)."""
    critic_lr: float = 3e-4
    """Adam rate of the twin Q-functions (qf_lr=3e-4)."""
    value_lr: float = 3e-4
    """Adam rate of V (vf_lr=3e-4)."""
    encoder_lr: float = 3e-4
    """Adam rate of the context encoder (context_lr=3e-4)."""
    gamma: float = 0.99
    """Discount (garage discount=0.99)."""
    tau: float = 0.005
    """Polyak rate of the target V (soft_target_tau=0.005)."""
    policy_mean_reg: float = 1e-3
    """Penalty on the squared pre-tanh mean (policy_mean_reg_coeff=1e-3)."""
    policy_std_reg: float = 1e-3
    """Penalty on the squared log-std (policy_std_reg_coeff=1e-3)."""
    log_std_min: float = -20.0
    """Log-std clamp (garage TanhGaussianMLPPolicy min_std=exp(-20))."""
    log_std_max: float = 2.0
    """Log-std clamp (max_std=exp(2))."""
    use_next_obs_in_context: bool = False
    """Context transitions include s' (garage use_next_obs_in_context=False)."""
    min_factor_var: float = 1e-7
    """Floor of each factor's variance σ²_n (garage product_of_gaussians clamps at 1e-7)."""

    def __post_init__(self) -> None:
        for name in ("hidden_sizes", "encoder_hidden_sizes"):
            sizes = tuple(getattr(self, name))
            object.__setattr__(self, name, sizes)  # lists would make the static config unhashable
            if not sizes or min(sizes) < 1:
                raise ValueError(f"{name} must be non-empty positive widths, got {sizes}")
        for name, low in (
            ("latent_size", 1), ("prior_episodes", 1), ("posterior_episodes", 0),
            ("extra_posterior_episodes", 0), ("warmup_iterations", 0), ("updates_per_iteration", 1),
            ("meta_batch_size", 1), ("batch_size", 1), ("embedding_batch_size", 1),
            ("replay_capacity_per_goal", 1),
        ):  # fmt: skip
            value = getattr(self, name)
            if not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
        for name in ("reward_scale", "actor_lr", "critic_lr", "value_lr", "encoder_lr", "min_factor_var"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("kl_lambda", "policy_mean_reg", "policy_std_reg"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.gamma <= 1:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma}")
        if not 0 < self.tau <= 1:
            raise ValueError(f"tau must be in (0, 1], got {self.tau}")
        if self.log_std_min >= self.log_std_max:
            raise ValueError(
                f"log_std_min ({self.log_std_min}) must be below log_std_max ({self.log_std_max})"
            )


def episodes_per_goal(config: Config) -> int:
    """The training env keeps a goal for the whole iteration: prior, posterior and extra episodes."""
    return config.prior_episodes + config.posterior_episodes + config.extra_posterior_episodes


def vector_steps_per_iteration(spec: EnvSpec, config: Config) -> int:
    return episodes_per_goal(config) * spec.episode_length


def check_meta_protocol(config: Config, adaptation_episodes: int) -> None:
    """Any meta-test length works: the posterior q(z|c) takes a context of any number of transitions."""
    del config, adaptation_episodes

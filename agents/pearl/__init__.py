"""PEARL: off-policy meta-RL with a probabilistic context encoder and SAC on [obs, z].

Rakelly, Zhou, Quillen, Finn, Levine, "Efficient Off-Policy Meta-Reinforcement Learning via Probabilistic
Context Variables" (ICML 2019, arXiv:1903.08254), Algorithm 1 (meta-training) and Algorithm 2 (meta-test).

- Inference network (Sec. 4.1): an MLP maps each context transition c_n = (s, a, r[, s']) to a Gaussian
  factor Ψ(z|c_n) = N(μ_n, σ²_n); q(z|c) ∝ N(0, I) Π_n Ψ(z|c_n), closed form σ² = 1 / (1 + Σ 1/σ²_n),
  μ = σ² Σ μ_n/σ²_n. We include the unit prior as one more factor (PEARL's code, oyster and garage
  `product_of_gaussians`, multiplies the factors only): an empty or masked context then gives exactly the
  prior, so one function serves the collection's first episodes and masked batches.
- Objective (eq. 2 / Sec. 4.2): the encoder is trained by the critic's loss plus kl_lambda · KL(q(z|c) ‖ N(0,
  I)) (summed over the meta-batch, as garage does); the actor and value losses see z through stop-gradient.
- SAC (Haarnoja et al., ICML 2018, arXiv:1801.01290) as in PEARL's code: twin Q(s, a, z), a state-value
  network V(s, z) with a Polyak target V̄ (eqs. 5, 7), y = scale · r + γ (1 − done) V̄(s', z), a fixed entropy
  weight 1 with rewards multiplied by `reward_scale` (≡ α = 1/reward_scale), and garage's 1e-3 penalties on
  the policy's mean and log-std.
- Data (Algorithm 1): every iteration resets the envs (fresh goals); each env plays `prior_episodes` with z
  from the prior (a fresh draw per episode), then `posterior_episodes` and `extra_posterior_episodes` with z
  from q(z|c) of a context batch re-sampled before each episode from its goal's context buffer. Context
  buffers hold only the goal's latest prior (+ posterior) episodes (cleared when the goal comes back);
  RL buffers keep everything up to `replay_capacity_per_goal`. Both are per (task, goal) slot, so a
  meta-batch element's context and RL rows come from one goal.

Layout: `config` (Config, episode counts), `networks` (policy, twin Q, V, encoder), `inference` (q(z|c), KL,
z draws), `replay` (per-goal buffers), `losses`, `agent` (State, init, one gradient step), `meta_training`
(Algorithm 1's iteration) and `adaptation` (Algorithm 2: init_adaptation, act, adapt).
"""

from mtrl.types import AgentTraits

from .adaptation import Context, act, adapt, init_adaptation
from .agent import Optimizers, State, init, make_optimizers, sample_goal_batches, update
from .config import Config, check_meta_protocol, episodes_per_goal, vector_steps_per_iteration
from .inference import context_features, kl_to_prior, posterior, product_of_gaussians, sample_latent
from .losses import CriticAux, actor_loss, critic_loss, value_loss
from .meta_training import CollectCarry, collect_episode, train_iteration
from .networks import Networks, make_networks, policy, q_values, state_value
from .replay import GoalReplay, add_episodes, clear_slots, init_goal_replay, sample_rows

TRAITS = AgentTraits(loop="episodic", meta=True)
"""What the wiring reads about this agent (`mtrl.types.AgentTraits`)."""

__all__ = [
    "CollectCarry", "Config", "Context", "CriticAux", "GoalReplay", "Networks", "Optimizers", "State",
    "TRAITS", "act", "actor_loss", "adapt", "add_episodes", "check_meta_protocol", "clear_slots",
    "collect_episode", "context_features", "critic_loss", "episodes_per_goal", "init", "init_adaptation",
    "init_goal_replay", "kl_to_prior", "make_networks", "make_optimizers", "policy", "posterior",
    "product_of_gaussians", "q_values", "sample_goal_batches", "sample_latent", "sample_rows", "state_value",
    "train_iteration", "update", "value_loss", "vector_steps_per_iteration",
]  # fmt: skip

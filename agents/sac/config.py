"""Hyperparameters shared by every SAC-family agent; each agent's `Config` extends this one.

Defaults are the MT10 recipe of the MOORE paper (Hendawy et al., ICLR 2024), which MT-SAC and
MT-MH-SAC share in the CARE / Meta-World setups: 400×3 networks, Adam 3e-4 for actor and critic,
1e-4 for the temperatures.
"""

from __future__ import annotations

import dataclasses

from ..gradient_methods import GRADIENT_METHODS
from ..gradient_methods.core import check_positive
from .weighting import TaskWeighting

TEMPERATURE_LOSSES = ("log_alpha", "alpha")


@dataclasses.dataclass(frozen=True, kw_only=True)
class SACConfig:
    """Soft actor-critic with twin critics and one learned temperature per task."""

    hidden_sizes: tuple[int, ...] = (400, 400, 400)
    """Hidden widths of actor and critic torsos (MOORE: each expert's layers, the last = d)."""
    num_critics: int = 2
    """Q-networks whose minimum forms the target and the actor's objective (clipped double Q)."""
    actor_lr: float = 3e-4
    """Adam learning rate of the policy."""
    critic_lr: float = 3e-4
    """Adam learning rate of the Q-networks."""
    alpha_lr: float = 1e-4
    """Adam learning rate of the per-task log-temperatures."""
    gamma: float = 0.99
    """Discount factor."""
    tau: float = 0.005
    """Polyak rate of the target critics, applied after every gradient step."""
    initial_alpha: float = 1.0
    """Temperature of every task at the start."""
    target_entropy: float | None = None
    """Entropy each task's temperature steers towards; None means -action_size."""
    log_std_min: float = -10.0
    """Lower clamp of the policy's log standard deviation."""
    log_std_max: float = 2.0
    """Upper clamp of the policy's log standard deviation."""
    one_hot_input: bool = True
    """Feed the observation's one-hot task id into the torsos. MT-SAC and MT-MH-SAC: True (their only task
    input, as in their references). MOORE, CARE, Soft Modularization, PaCo and Hyper-SAC default to False:
    their experts/encoders/base networks read the state and the task enters only through their own routing
    (task weights, context, ...); True there is an ablation (and mtrl's behaviour before this switch)."""
    temperature_loss: str = "log_alpha"
    """Form of the temperature objective: "log_alpha", −log α (log π + H̄) (MOORE's code, the JAX
    re-implementation, garage, Soft Modularization's and PaCo's code), or "alpha", −α (log π + H̄) (SAC
    paper eq. 18, and CARE's mtrl code behind the CARE paper's baselines)."""
    actor_first: bool = False
    """Order of one update: False (mtrl's default, as the SAC paper's algorithm box and the JAX
    re-implementation) steps the critic, then the actor against the new critic, then the temperatures;
    True steps actor and temperatures first and the critic's target then uses the updated policy and
    temperatures, as mushroom-rl's SAC that the MOORE authors ran (MOORE presets: True)."""
    critic_only_updates: int = 0
    """Gradient steps that update only the critics before the actor and the temperatures start (MOORE's
    authors: 1,500, i.e. their 3,000-step actor warm-up minus the 1,500 steps of initial replay, at one
    update per env step per task); 0 updates all three from the first step."""
    gradient_method: str = "mean"
    """How per-task gradients combine: mean (plain MT-SAC, one backward pass), pcgrad, cagrad,
    aligned_mtl (actor and critic), gradnorm, famo (loss balancing: critic; the actor takes the mean)."""
    cagrad_c: float = 0.4
    """CAGrad radius c of ‖d − g0‖ ≤ c‖g0‖ (Liu et al., NeurIPS 2021; 0.4 their default)."""
    gradnorm_alpha: float = 1.5
    """GradNorm asymmetry α, 0 equalises gradient norms (Chen et al., ICML 2018: 1.5 on NYUv2)."""
    gradnorm_lr: float = 0.025
    """Adam learning rate of GradNorm's task weights (ours: FAMO's logit rate)."""
    famo_gamma: float = 1e-3
    """FAMO decay γ of the logits (Liu et al., NeurIPS 2023: 1e-3; their MT10 script 0.01)."""
    famo_lr: float = 0.025
    """FAMO learning rate β of the logits (Liu et al., NeurIPS 2023: 0.025)."""

    def __post_init__(self) -> None:
        # A list (from JSON, say) would make the config, a static pytree field, unhashable.
        object.__setattr__(self, "hidden_sizes", tuple(self.hidden_sizes))
        if not self.hidden_sizes or min(self.hidden_sizes) < 1:
            raise ValueError(f"hidden_sizes must be non-empty positive widths, got {self.hidden_sizes}")
        if not isinstance(self.critic_only_updates, int) or self.critic_only_updates < 0:
            raise ValueError(f"critic_only_updates must be an int >= 0, got {self.critic_only_updates!r}")
        if self.num_critics < 1:
            raise ValueError(f"num_critics must be >= 1, got {self.num_critics}")
        if self.log_std_min >= self.log_std_max:
            raise ValueError(
                f"log_std_min ({self.log_std_min}) must be below log_std_max ({self.log_std_max})"
            )
        if self.gradient_method not in GRADIENT_METHODS:
            raise ValueError(
                f"unknown gradient_method {self.gradient_method!r}; valid: {', '.join(GRADIENT_METHODS)}"
            )
        check_positive("cagrad_c", self.cagrad_c)
        check_positive("gradnorm_alpha", self.gradnorm_alpha, allow_zero=True)
        check_positive("gradnorm_lr", self.gradnorm_lr)
        check_positive("famo_gamma", self.famo_gamma, allow_zero=True)
        check_positive("famo_lr", self.famo_lr)
        if self.temperature_loss not in TEMPERATURE_LOSSES:
            raise ValueError(
                f"unknown temperature_loss {self.temperature_loss!r}; valid: {', '.join(TEMPERATURE_LOSSES)}"
            )
        if self.actor_first and self.task_weighting() is not None:
            raise ValueError(
                "actor_first=True cannot combine with this agent's task weighting, which weighs the actor "
                "by the critic's per-task losses of the same step; valid: actor_first=False"
            )
        if self.gradient_method != "mean" and self.task_weighting() is not None:
            raise ValueError(
                f"gradient_method {self.gradient_method!r} cannot combine with this agent's own task "
                "weighting; valid: mean, or switch the weighting off in the agent's config"
            )

    def task_weighting(self) -> TaskWeighting | None:
        """How `update` re-weights the tasks' losses; None: the plain mean. PaCo and SoftMod override it."""
        return None

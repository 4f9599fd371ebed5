"""Multi-task gradient methods: ways to combine per-task gradients into one update.

Each method is a `GradientMethod(init, combine, after_step)` over per-task gradients (pytrees with
a leading task axis), usable by any agent that can give one loss per task; the SAC family selects
one by `SACConfig.gradient_method`. `task_gradient_step` is the per-task counterpart of
`mtrl.gradients.gradient_step`.
"""

from .aligned_mtl import aligned_mtl, alignment_matrix
from .cagrad import cagrad, cagrad_dual_objective, cagrad_weights, project_to_simplex
from .core import (
    GradientMethod,
    TaskGradientStep,
    conflict_fraction,
    gram_matrix,
    mean,
    split_tasks,
    task_gradient_step,
    task_losses_and_grads,
    weighted_sum,
)
from .famo import FAMOState, famo, famo_logit_gradient, famo_weights
from .gradnorm import GradNormState, gradnorm, gradnorm_weight_gradient
from .pcgrad import pcgrad, pcgrad_coefficients, random_orders

GRADIENT_METHODS = ("mean", "pcgrad", "cagrad", "gradnorm", "famo", "aligned_mtl")
"""Names `SACConfig.gradient_method` accepts; "mean" is plain averaging (today's MT-SAC)."""

__all__ = [
    "GRADIENT_METHODS",
    "FAMOState",
    "GradNormState",
    "GradientMethod",
    "TaskGradientStep",
    "aligned_mtl",
    "alignment_matrix",
    "cagrad",
    "cagrad_dual_objective",
    "cagrad_weights",
    "conflict_fraction",
    "famo",
    "famo_logit_gradient",
    "famo_weights",
    "gradnorm",
    "gradnorm_weight_gradient",
    "gram_matrix",
    "mean",
    "pcgrad",
    "pcgrad_coefficients",
    "project_to_simplex",
    "random_orders",
    "split_tasks",
    "task_gradient_step",
    "task_losses_and_grads",
    "weighted_sum",
]

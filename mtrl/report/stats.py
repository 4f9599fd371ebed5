"""Aggregate scores over runs and tasks with stratified bootstrap confidence intervals.

Follows Agarwal et al., "Deep Reinforcement Learning at the Edge of the Statistical Precipice" (NeurIPS 2021,
arXiv:2108.13264), section 4: a score matrix holds one score per run (seed) and task, `[runs, tasks]`; the
aggregates are the interquartile mean (IQM), mean, median and optimality gap; intervals come from a
stratified bootstrap that resamples runs with replacement *within each task*; and the probability of
improvement P(X > Y) is the Mann-Whitney U statistic per task, averaged over tasks.

Every aggregate accepts any number of leading axes (`[..., runs, tasks]` → `[...]`) so that thousands of
bootstrap replicates are computed as one array operation. numpy only: rliable itself pins arch, statsmodels,
pandas and seaborn, which mtrl does not otherwise need.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

Aggregate = Callable[[np.ndarray], np.ndarray]
MAX_BOOTSTRAP_ELEMENTS = 4_000_000  # bootstrap replicates are drawn in chunks of at most this many scores


def mean(scores: np.ndarray) -> np.ndarray:
    """Mean over all runs and tasks."""
    return np.asarray(scores, np.float64).mean(axis=(-2, -1))


def median(scores: np.ndarray) -> np.ndarray:
    """Median over tasks of each task's mean over runs (the paper's median of per-task mean scores)."""
    return np.median(np.asarray(scores, np.float64).mean(axis=-2), axis=-1)


def iqm(scores: np.ndarray) -> np.ndarray:
    """Interquartile mean: the mean of the middle 50 % of all run × task scores (paper §4.1).

    Cuts floor(N/4) scores from each end of the N sorted scores, as `scipy.stats.trim_mean(x, 0.25)` does.
    """
    scores = np.asarray(scores, np.float64)
    flat = np.sort(scores.reshape(*scores.shape[:-2], -1), axis=-1)
    cut = int(0.25 * flat.shape[-1])
    return flat[..., cut : flat.shape[-1] - cut].mean(axis=-1)


def optimality_gap(scores: np.ndarray, target: float = 1.0) -> np.ndarray:
    """How far scores fall short of `target` on average, scores above it counting as `target` (paper §4.1)."""
    return target - np.minimum(np.asarray(scores, np.float64), target).mean(axis=(-2, -1))


AGGREGATES: dict[str, Aggregate] = {
    "IQM": iqm,
    "mean": mean,
    "median": median,
    "optimality gap": optimality_gap,
}


class Interval(NamedTuple):
    """A point estimate and its confidence interval."""

    point: float
    low: float
    high: float


def check_scores(scores: np.ndarray) -> np.ndarray:
    """`scores` as a float `[runs, tasks]` matrix with at least one run and task, else a ValueError."""
    scores = np.asarray(scores, np.float64)
    if scores.ndim != 2 or 0 in scores.shape:
        raise ValueError(f"scores must be a non-empty [runs, tasks] matrix, got shape {scores.shape}")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores contain NaN or infinite values")
    return scores


def stratified_bootstrap(scores: np.ndarray, reps: int, rng: np.random.Generator) -> np.ndarray:
    """`reps` resampled score matrices `[reps, runs, tasks]`: runs drawn with replacement per task."""
    runs, tasks = scores.shape
    rows = rng.integers(0, runs, size=(reps, runs, tasks))
    return scores[rows, np.arange(tasks)]


def interval(
    scores: np.ndarray,
    aggregate: Aggregate,
    *,
    reps: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """`aggregate(scores)` with its percentile stratified-bootstrap confidence interval."""
    scores = check_scores(scores)
    _check_bootstrap(reps, confidence)
    rng = np.random.default_rng(seed)
    chunk = max(1, MAX_BOOTSTRAP_ELEMENTS // scores.size)
    replicates = np.concatenate(
        [aggregate(stratified_bootstrap(scores, min(chunk, reps - i), rng)) for i in range(0, reps, chunk)]
    )
    return _percentile_interval(float(aggregate(scores)), replicates, confidence)


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(X > Y): per task, the chance a run of X beats a run of Y (ties count half), averaged over tasks.

    Paper §4.3: per task the Mann-Whitney U statistic over all run pairs divided by their number.
    `x` is `[..., runs_x, tasks]`, `y` `[..., runs_y, tasks]`; the leading axes broadcast.
    """
    x = np.asarray(x, np.float64)[..., :, None, :]
    y = np.asarray(y, np.float64)[..., None, :, :]
    wins = (x > y).astype(np.float64) + 0.5 * (x == y)
    return wins.mean(axis=(-3, -2)).mean(axis=-1)


def improvement_interval(
    x: np.ndarray,
    y: np.ndarray,
    *,
    reps: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """P(X > Y) with a confidence interval from resampling both groups' runs within each task."""
    x, y = check_scores(x), check_scores(y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"P(X > Y) needs the same tasks on both sides, got {x.shape[1]} and {y.shape[1]}")
    _check_bootstrap(reps, confidence)
    rng = np.random.default_rng(seed)
    chunk = max(1, MAX_BOOTSTRAP_ELEMENTS // (x.shape[0] * y.shape[0] * x.shape[1]))
    replicates = []
    for i in range(0, reps, chunk):
        n = min(chunk, reps - i)
        bx = stratified_bootstrap(x, n, rng)
        by = stratified_bootstrap(y, n, rng)
        replicates.append(probability_of_improvement(bx, by))
    point = float(probability_of_improvement(x, y))
    return _percentile_interval(point, np.concatenate(replicates), confidence)


def curve_intervals(
    scores: np.ndarray,
    aggregate: Aggregate,
    *,
    reps: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> np.ndarray:
    """Per evaluation point of `[points, runs, tasks]` scores, `[points, 3]`: point estimate, low, high."""
    scores = np.asarray(scores, np.float64)
    if scores.ndim != 3:
        raise ValueError(f"curve scores must be [points, runs, tasks], got shape {scores.shape}")
    return np.array(
        [
            interval(s, aggregate, reps=reps, confidence=confidence, seed=seed + i)
            for i, s in enumerate(scores)
        ]
    ).reshape(-1, 3)


def _percentile_interval(point: float, replicates: np.ndarray, confidence: float) -> Interval:
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(replicates, [tail, 100 - tail])
    return Interval(point, float(low), float(high))


def _check_bootstrap(reps: int, confidence: float) -> None:
    if reps < 1:
        raise ValueError(f"bootstrap reps must be >= 1, got {reps}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")

"""Point-minus-tcp offsets without float32 rounding, for reach terms with narrow margins.

Metaworld computes in float64; the ports in float32. Reach terms with narrow margins amplify the
rounding of `point - tcp` (and of the fingertip sum that gives the tcp) into visible reward errors.
`tcp_to` takes the offset from each fingertip instead, and `split`/`anchored_minus` carry a float64
point as a float32 (hi, lo) pair, so a point that stays where it started keeps its float64 value.
Used by the handle-press, faucet and dial-turn ports.
"""

import numpy as np


def split(x):
    """A float64 point as float32 (hi, lo) [6]: hi is x rounded to float32, lo the part hi misses."""
    x = np.asarray(x, np.float64)
    hi = x.astype(np.float32).astype(np.float64)
    return np.concatenate([hi, x - hi])


def anchored_minus(point, anchor, other):
    """`point - other` [envs, 3] for a float32 `point` that stays near a `split` float64 `anchor`.

    While the point sits where the anchor was taken, `point - hi` is exactly 0 and the result is the
    float64 anchor minus `other` up to one rounding; when it moves, it is no worse than `point - other`.
    """
    hi, lo = anchor[:, :3], anchor[:, 3:]
    return ((point - hi) + lo) + (hi - other)


def tcp_to(frame, point, anchor=None):
    """`point - tcp_center` [envs, 3], as the mean of the offsets from the two fingertips.

    Same value as `point - frame.tcp`, but each difference of nearby float32 positions is exact, so the
    rounding of the fingertip sum is avoided (reach terms with narrow margins amplify it). With an
    `anchor`, the point's own float32 rounding is avoided too while it stays at the anchor.
    """
    if anchor is None:
        return ((point - frame.right_finger) + (point - frame.left_finger)) / 2
    return (
        anchored_minus(point, anchor, frame.right_finger) + anchored_minus(point, anchor, frame.left_finger)
    ) / 2

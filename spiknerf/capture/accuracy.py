"""How close estimated cameras are to known ones, after the similarity that best aligns them.

Structure from motion recovers cameras up to a similarity (its own origin,
orientation and scale), so the estimated camera centres are first aligned to the
true ones by the least-squares similarity (Umeyama, 1991), then per camera:

* rotation error: the angle of ``R_true^T R_aligned``, in degrees;
* position error: the distance between the aligned and the true centre, divided
  by the capture's extent, the largest distance between two true camera centres.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np


class PoseErrors(NamedTuple):
    """Per-camera errors of matched cameras and their summary."""

    cameras: int
    rotation_deg: np.ndarray  # [N]
    position_rel: np.ndarray  # [N], fractions of the extent
    extent: float  # largest distance between two true camera centres, in the true scene's units

    def summary(self) -> dict[str, float]:
        return {
            "cameras": self.cameras,
            "rotation_median_deg": float(np.median(self.rotation_deg)),
            "rotation_max_deg": float(self.rotation_deg.max()),
            "position_median_pct": 100 * float(np.median(self.position_rel)),
            "position_max_pct": 100 * float(self.position_rel.max()),
        }


def umeyama(source: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """(s, R, t) minimising ``sum |target - (s R source + t)|²`` over points ``[N, 3]`` (Umeyama 1991)."""
    mu_s, mu_t = source.mean(0), target.mean(0)
    a, b = source - mu_s, target - mu_t
    u, d, vt = np.linalg.svd(b.T @ a / len(source))
    sign = np.eye(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:  # a reflection fits better: take the best rotation instead
        sign[2, 2] = -1
    rotation = u @ sign @ vt
    scale = float(np.trace(np.diag(d) @ sign) / (a**2).sum(1).mean())
    return scale, rotation, mu_t - scale * rotation @ mu_s


def rotation_angle_deg(r: np.ndarray) -> np.ndarray:
    """The angles in degrees of rotation matrices ``[N, 3, 3]``."""
    cos = (np.trace(r, axis1=1, axis2=2) - 1) / 2
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def pose_errors(estimated: dict[str, np.ndarray], true: dict[str, np.ndarray]) -> PoseErrors:
    """Errors of the cameras (camera-to-world ``[4, 4]`` by name, one axis convention on both sides) known to both."""
    names = sorted(set(estimated) & set(true))
    if len(names) < 3:
        raise ValueError(f"{len(names)} cameras in common; an alignment needs at least 3")
    est = np.stack([estimated[n] for n in names]).astype(np.float64)
    ref = np.stack([true[n] for n in names]).astype(np.float64)
    scale, rotation, shift = umeyama(est[:, :3, 3], ref[:, :3, 3])
    centres = est[:, :3, 3] @ (scale * rotation).T + shift
    aligned = rotation @ est[:, :3, :3]
    centres_true = ref[:, :3, 3]
    extent = float(max(np.linalg.norm(centres_true[:, None] - centres_true[None], axis=-1).max(), math.ulp(1.0)))
    errors = rotation_angle_deg(np.swapaxes(ref[:, :3, :3], 1, 2) @ aligned)
    return PoseErrors(len(names), errors, np.linalg.norm(centres - centres_true, axis=1) / extent, extent)

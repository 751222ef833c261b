"""Camera poses: validation of camera-to-world matrices.

A pose must be finite and rigid: its rotation part orthonormal and right-handed
(det = +1), its bottom row (0, 0, 0, 1). Scaled or sheared matrices (an object
scale baked into a Blender export, for instance) would silently change the
ray directions' lengths and the scene's metric, so they are rejected.
"""

from __future__ import annotations

import numpy as np

from spiknerf.errors import InputError

# Max |R^T R - I| entry accepted. Poses written as float32 text are orthonormal to
# about 1e-6; scaling by 1.001 already gives 2e-3.
RIGID_TOLERANCE = 1e-3
# Largest coordinate taken: float32 (what the renderer uses) holds 3e38, but rays from farther would overflow.
MAX_COORDINATE = 1e30


def check_poses(c2w: np.ndarray, names: list[str], source: str) -> np.ndarray:
    """Validated float32 ``[N, 4, 4]`` from ``[N, 4, 4]`` or ``[N, 3, 4]`` camera-to-world matrices.

    ``names`` label the poses in error messages; ``source`` is the file they came from.
    """
    c2w = np.asarray(c2w, dtype=np.float64)
    if c2w.ndim != 3 or c2w.shape[1:] not in ((4, 4), (3, 4)):
        raise InputError(f"{source}: poses must be 4x4 or 3x4 matrices (got shape {tuple(c2w.shape)})")
    for i, name in enumerate(names):
        m = c2w[i]
        if not np.isfinite(m).all():
            raise InputError(f"{source}: pose of {name} is not finite")
        if not np.abs(m[:3, 3]).max() <= MAX_COORDINATE:
            raise InputError(f"{source}: pose of {name} puts the camera beyond {MAX_COORDINATE:g} from the origin")
        r = m[:3, :3]
        with np.errstate(over="ignore", invalid="ignore"):  # huge entries give inf or nan: refused below
            deviation = float(np.abs(r.T @ r - np.eye(3)).max())
            det = float(np.linalg.det(r))
        if not (deviation <= RIGID_TOLERANCE and det >= 0):
            raise InputError(
                f"{source}: pose of {name} is not a rigid transform "
                f"(max |R^T R - I| = {deviation:.3g}, det R = {det:.3g}; scaled, sheared or mirrored "
                "poses are not supported)"
            )
        if m.shape[0] == 4 and not np.abs(m[3] - (0, 0, 0, 1)).max() <= RIGID_TOLERANCE:
            raise InputError(f"{source}: pose of {name} has bottom row {m[3].tolist()}, expected [0, 0, 0, 1]")
    out = np.tile(np.eye(4), (len(c2w), 1, 1))
    out[:, :3, :] = c2w[:, :3, :]
    return out.astype(np.float32)

"""A reconstruction in the frame spiknerf trains in: OpenGL cameras, z up, the scene in a well-sized box.

COLMAP's world has an arbitrary origin, orientation and scale. Here it is moved so that

* the cameras' mean up vector points along +z (as in the built-in scene);
* objects and forward-facing scenes: the robust box of the sparse points (per-axis
  :data:`PERCENTILES`, which drops stray points) is centred on the origin and
  scaled so that its longer half-side, padded by :data:`PAD`, is 1;
* unbounded scenes (content well beyond the cameras): the point the cameras look
  at (least-squares focus of their optical axes) is the origin and the farthest
  camera is at distance 1, the usual frame for contracting the rest of space;

and ``aabb`` is, for objects and forward-facing scenes, the points' robust box, padded,
in that frame; for unbounded scenes the cube ``[-1, 1]^3`` that holds the cameras (what
lies beyond it is a background, contracted by a reader that knows how). ``scene_kind``:
``forward`` by the loader's own rule (:func:`spiknerf.nerf.data.framing.axis_spread` within
:data:`~spiknerf.nerf.data.framing.FORWARD_MAX_ANGLE`), so that a processed folder and a loaded one agree,
``unbounded`` when more than :data:`FAR_FRACTION` of the points lie
farther from the focus than the cameras do (a background), ``object`` otherwise.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from spiknerf.nerf.camera_path import focus_point
from spiknerf.nerf.data.framing import FORWARD_MAX_ANGLE, axis_spread

SCENE_KINDS: tuple[str, ...] = ("forward", "object", "unbounded")
PERCENTILES = (1.0, 99.0)
PAD = 0.1
FAR_FRACTION = 0.05  # a background puts many points beyond the cameras, an object alone next to none
OPENCV_TO_OPENGL = np.diag([1.0, -1.0, -1.0, 1.0])  # camera axes: y down, z forward -> y up, z backward


class Framing(NamedTuple):
    """Cameras and points in the normalized frame, and how it was reached."""

    c2w: np.ndarray  # float64 [N, 4, 4] camera-to-world, OpenGL axes
    points: np.ndarray  # float64 [M, 3]
    aabb: np.ndarray  # float64 [6] (xmin, ymin, zmin, xmax, ymax, zmax): the box to march in uncontracted
    scene_kind: str
    world_from_colmap: np.ndarray  # float64 [4, 4] similarity: x_ours = s R x_colmap + t


def c2w_from_colmap(cam_from_world: np.ndarray) -> np.ndarray:
    """OpenGL camera-to-world ``[N, 4, 4]`` from COLMAP's world-to-camera ``[N, 3, 4]`` (OpenCV axes)."""
    n = len(cam_from_world)
    w2c = np.tile(np.eye(4), (n, 1, 1))
    w2c[:, :3, :] = cam_from_world
    return np.linalg.inv(w2c) @ OPENCV_TO_OPENGL


def rotation_onto(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The rotation ``[3, 3]`` taking unit vector ``a`` to unit vector ``b`` by the shortest arc."""
    v, c = np.cross(a, b), float(a @ b)
    if c < -1 + 1e-9:  # opposite: half a turn about any axis perpendicular to a
        axis = np.cross(a, [1.0, 0.0, 0.0] if abs(a[0]) < 0.9 else [0.0, 1.0, 0.0])
        axis /= np.linalg.norm(axis)
        return 2 * np.outer(axis, axis) - np.eye(3)
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx / (1 + c)


def similarity(scale: float, rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """``[4, 4]`` matrix of ``x -> scale * rotation @ x + translation``."""
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = scale * rotation, translation
    return m


def apply(m: np.ndarray, c2w: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cameras and points moved by the similarity ``m`` (cameras stay rigid: the scale moves only their centres)."""
    scale = np.cbrt(np.linalg.det(m[:3, :3]))
    rotation = m[:3, :3] / scale
    out = c2w.copy()
    out[:, :3, :3] = rotation @ c2w[:, :3, :3]
    out[:, :3, 3] = c2w[:, :3, 3] @ m[:3, :3].T + m[:3, 3]
    return out, points @ m[:3, :3].T + m[:3, 3]


def robust_box(points: np.ndarray) -> np.ndarray:
    """Per-axis :data:`PERCENTILES` of ``points``, ``[6]``."""
    lo, hi = np.percentile(points, PERCENTILES, axis=0)
    return np.concatenate([lo, hi])


def padded(box: np.ndarray) -> np.ndarray:
    """``box`` grown on every side by :data:`PAD` of its longest side.

    The same margin on every axis: a thin axis (a flat object, a base seen edge-on) holds few points
    near its ends, and a margin in proportion to its own size left part of the object outside.
    """
    lo, hi = box[:3], box[3:]
    margin = PAD * (hi - lo).max()
    return np.concatenate([lo - margin, hi + margin])


def detect_scene_kind(c2w: np.ndarray, points: np.ndarray) -> str:
    """``forward``, ``object`` or ``unbounded`` from where the cameras look and where the points lie."""
    if axis_spread(c2w) <= FORWARD_MAX_ANGLE:
        return "forward"
    focus = focus_point(torch.as_tensor(c2w)).double().numpy()
    camera_distance = np.linalg.norm(c2w[:, :3, 3] - focus, axis=1).max()
    far = np.linalg.norm(points - focus, axis=1) > camera_distance
    return "unbounded" if far.mean() > FAR_FRACTION else "object"


def frame_scene(cam_from_world: np.ndarray, points: np.ndarray) -> Framing:
    """COLMAP's cameras ``[N, 3, 4]`` and points ``[M, 3]`` in the normalized frame (see the module's doc)."""
    c2w = c2w_from_colmap(cam_from_world)
    up = c2w[:, :3, 1].mean(0)
    up /= np.linalg.norm(up)
    upright = similarity(1.0, rotation_onto(up, np.array([0.0, 0.0, 1.0])), np.zeros(3))
    c2w, points = apply(upright, c2w, points)
    kind = detect_scene_kind(c2w, points)
    if kind == "unbounded":
        centre = focus_point(torch.as_tensor(c2w)).double().numpy()
        scale = 1.0 / np.linalg.norm(c2w[:, :3, 3] - centre, axis=1).max()
    else:
        box = padded(robust_box(points))
        centre = (box[:3] + box[3:]) / 2
        scale = 2.0 / (box[3:] - box[:3]).max()
    move = similarity(scale, np.eye(3), -scale * centre)
    c2w, points = apply(move, c2w, points)
    aabb = np.array([-1.0] * 3 + [1.0] * 3) if kind == "unbounded" else padded(robust_box(points))
    return Framing(c2w, points, aabb, kind, move @ upright)

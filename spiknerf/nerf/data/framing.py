"""Scene kind and framing from the cameras: forward-facing, an object, or an unbounded scene.

What a capture is follows from where its cameras look, not from its file format:

* ``forward``: every camera looks roughly the same way (nine in ten of the optical
  axes within :data:`FORWARD_MAX_ANGLE` of their mean), as in LLFF's captures.
  The poses are recentred on their average pose, scaled so that the nearest
  content lies beyond depth 1, and rays are marched in NDC (the original NeRF);
  the box in NDC is the one all training rays pass through
  (:func:`ndc_box`), not ``[-1, 1]^3``: the views of cameras turned or moved
  away from the average one reach well beyond it.
* ``object``: the cameras surround a region they all look at, and nothing
  beyond it matters: images with transparency (synthetic scenes), or depths
  (LLFF bounds, sparse points) that stay close to that region. Rays are marched
  in a box around it (:func:`scene_box`).
* ``unbounded``: the cameras surround a region but the photos show what lies far
  behind it (a room, a landscape): the box around the cameras is kept as it is
  and everything beyond it is contracted into a shell around it
  (:mod:`spiknerf.nerf.contraction`). Real all-around photos without depths are
  taken as unbounded: their backgrounds are in the picture.

:func:`detect_kind` decides from the poses (and, when there are any, depths and
points); :func:`scene_box` gives the world box of an object or unbounded
scene. A scene may also declare its kind and box (the ``spiknerf`` block of a
``transforms.json``), and ``--scene-kind`` overrides both.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch

from spiknerf.errors import InputError
from spiknerf.nerf.data.scene import Scene
from spiknerf.nerf.rays import pixel_rays

SCENE_KINDS: tuple[str, ...] = ("forward", "object", "unbounded")
KIND_CHOICES: tuple[str, ...] = ("auto", *SCENE_KINDS)
# a capture is forward-facing when nine in ten of its optical axes lie within this angle of their mean (LLFF's scenes:
# a few degrees to about 20; cameras around an object: 30 and more)
FORWARD_MAX_ANGLE = 25.0
# an all-around capture is an object when its content (depths, points) stays within this many times the cameras'
# distance from the region they look at
OBJECT_DEPTH_RATIO = 1.5
# forward-facing scenes are scaled so that the nearest content sits at depth 1 / NEAR_MARGIN (the original NeRF's
# bd_factor), beyond the NDC near plane at depth 1
NEAR_MARGIN = 0.75
# LLFF's near bounds are a low percentile of each view's point depths: the NDC box starts a little nearer
DEPTH_SLACK = 0.9
# an unbounded scene's rays start this share of its box's size off the cameras (floaters cling to the lens
# otherwise) and run to this many times the box's far corner, where the contraction has all but closed
UNBOUNDED_NEAR = 0.01
UNBOUNDED_FAR = 1000.0
NO_REGION = "the cameras give no region to frame (do they all stand at one point?)"


@dataclass(frozen=True)
class Hints:
    """What a scene's files say about its extent, besides the poses.

    ``depths [N, 2]``: near and far content depth per view (LLFF's bounds) in
    the order of the scene's splits (train first), or None; ``points [P, 3]``:
    sparse 3D points, or None; ``alpha``: the images have transparency;
    ``kind`` / ``aabb``: what the scene declares (None: let the poses decide);
    ``near_far``: the ray bounds it declares with its box; ``format_box``: the
    box its format implies (instant-ngp's ``aabb_scale`` cube), the box of an
    object when it declares none.
    """

    depths: np.ndarray | None = None
    points: np.ndarray | None = None
    alpha: bool = False
    kind: str | None = None
    aabb: np.ndarray | None = None
    near_far: tuple[float, float] | None = None
    format_box: np.ndarray | None = None


def optical_axes(c2w: np.ndarray) -> np.ndarray:
    """Unit viewing directions ``[N, 3]`` of OpenGL camera-to-world poses (they look down -z)."""
    axes = -np.asarray(c2w, dtype=np.float64)[:, :3, 2]
    return axes / np.linalg.norm(axes, axis=1, keepdims=True)


def axis_spread(c2w: np.ndarray, quantile: float = 0.9) -> float:
    """The ``quantile`` of the angles (degrees) between the optical axes and their mean."""
    axes = optical_axes(c2w)
    mean = axes.sum(0)
    norm = np.linalg.norm(mean)
    if norm < 1e-6 * len(axes):  # axes that cancel out: cameras all around, looking in or out
        return 180.0
    cos = np.clip(axes @ (mean / norm), -1.0, 1.0)
    return float(np.degrees(np.quantile(np.arccos(cos), quantile)))


def look_at_point(c2w: np.ndarray) -> np.ndarray:
    """The point nearest all optical axes in the least-squares sense, ``[3]``.

    With nearly parallel axes (a forward capture) the system is ill-conditioned;
    a small pull towards the cameras' centroid keeps the answer finite.
    """
    c2w = np.asarray(c2w, dtype=np.float64)
    centres, axes = c2w[:, :3, 3], optical_axes(c2w)
    proj = np.eye(3)[None] - axes[:, :, None] * axes[:, None, :]  # onto the plane normal to each axis
    a = proj.sum(0)
    b = np.einsum("nij,nj->i", proj, centres)
    reg = 1e-6 * np.trace(a)
    return np.linalg.solve(a + reg * np.eye(3), b + reg * centres.mean(0))


def camera_distances(c2w: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Distances ``[N]`` of the camera centres from ``target``."""
    return np.linalg.norm(np.asarray(c2w, dtype=np.float64)[:, :3, 3] - target, axis=1)


def detect_kind(c2w: np.ndarray, hints: Hints = Hints()) -> tuple[str, str]:
    """(kind, why) of a capture from its camera poses ``[N, 4, 4]`` (OpenGL) and what else its files say."""
    spread = axis_spread(c2w)
    if spread <= FORWARD_MAX_ANGLE:
        return "forward", f"90 % of the optical axes lie within {spread:.0f}° of their mean"
    around = f"the cameras look from all around (90 % of the optical axes within {spread:.0f}° of their mean)"
    if hints.alpha:
        return "object", f"{around} and the images are transparent beyond the object"
    target = look_at_point(c2w)
    radius = float(np.median(camera_distances(c2w, target)))
    if not radius > 0:  # also nan
        raise InputError(NO_REGION)
    reach = content_reach(c2w, target, hints)
    if reach is None:
        return "unbounded", f"{around}; photos without depths or transparency show their background"
    if reach <= OBJECT_DEPTH_RATIO * radius:
        return "object", f"{around} and the content lies within {reach / radius:.2f} x their distance"
    return "unbounded", f"{around} and content lies as far as {reach / radius:.1f} x their distance from it"


def content_reach(c2w: np.ndarray, target: np.ndarray, hints: Hints) -> float | None:
    """How far from ``target`` the scene's content reaches (90th percentile), from its points or the far depths
    of its views; None when the files say nothing about depth."""
    if hints.points is not None and len(hints.points):
        return float(np.quantile(np.linalg.norm(hints.points - target, axis=1), 0.9))
    if hints.depths is not None:
        c2w = np.asarray(c2w, dtype=np.float64)
        far = c2w[:, :3, 3] + optical_axes(c2w) * hints.depths[:, 1:2]
        return float(np.quantile(np.linalg.norm(far - target, axis=1), 0.9))
    return None


def scene_box(kind: str, c2w: np.ndarray, intrinsics: np.ndarray, size: tuple[int, int],
              points: np.ndarray | None = None) -> np.ndarray:
    """The world box ``[6]`` of an object or unbounded capture, a cube around the region the cameras look at.

    ``unbounded``: the cube holds the cameras (nine in ten of them; it reaches their
    median distance from the look-at point), as mip-NeRF 360 and nerfstudio
    place theirs, so that what lies between the cameras and the object keeps
    full resolution; beyond it space is contracted. ``object``: the cube of
    sparse points around the look-at point when there are any, else the
    largest sphere around it that every camera sees whole (its radius is the
    camera's distance times the sine of the half field of view across the
    image's narrower side).
    """
    c2w = np.asarray(c2w, dtype=np.float64)
    target = look_at_point(c2w)
    dist = camera_distances(c2w, target)
    if kind == "unbounded":
        half = float(np.quantile(dist, 0.9))
    elif points is not None and len(points):
        near = points[np.linalg.norm(points - target, axis=1) <= np.median(dist)]
        if len(near) < 8:
            near = points
        lo, hi = np.quantile(near, 0.02, axis=0), np.quantile(near, 0.98, axis=0)
        half = float(np.abs(np.concatenate([lo - target, hi - target])).max()) * 1.1
    else:
        h, w = size
        fov = 2 * np.arctan(0.5 * min(h / intrinsics[:, 1].max(), w / intrinsics[:, 0].max()))
        half = float(np.min(dist) * math.sin(fov / 2))
    if not (half > 0 and np.isfinite(half) and np.isfinite(target).all()):
        raise InputError(NO_REGION)
    return np.concatenate([target - half, target + half])


def average_pose(c2w: np.ndarray) -> np.ndarray:
    """``[4, 4]`` pose at the mean camera centre, looking along the summed viewing axes."""

    def unit(v: np.ndarray) -> np.ndarray:
        norm = np.linalg.norm(v)
        if not 1e-9 < norm < np.inf:  # e.g. cameras looking in directions that cancel out
            raise InputError("the cameras have no average orientation to recentre on")
        return v / norm

    c2w = np.asarray(c2w, dtype=np.float64)
    z = unit(c2w[:, :3, 2].sum(0))
    x = unit(np.cross(c2w[:, :3, 1].sum(0), z))
    y = unit(np.cross(z, x))
    avg = np.eye(4)
    avg[:3, 0], avg[:3, 1], avg[:3, 2], avg[:3, 3] = x, y, z, c2w[:, :3, 3].mean(0)
    return avg


def forward_transform(c2w: np.ndarray, near_depth: float) -> np.ndarray:
    """The similarity ``[4, 4]`` that puts a forward capture in the frame NDC wants: centred on the average pose
    (looking down -z) and scaled so that the nearest content, at ``near_depth``, lies at depth 1 / NEAR_MARGIN."""
    scale = 1.0 / (near_depth * NEAR_MARGIN)
    if not (np.isfinite(scale) and scale > 0):
        raise InputError(f"nearest content depth {near_depth!r} cannot frame a forward-facing scene")
    to_avg = np.linalg.inv(average_pose(c2w))
    return np.diag([scale, scale, scale, 1.0]) @ to_avg


def apply_transform(transform: np.ndarray, c2w: np.ndarray) -> np.ndarray:
    """Poses ``[N, 4, 4]`` moved by a similarity: rotations stay rotations, centres move and scale."""
    scale = np.linalg.norm(transform[:3, 0])
    out = np.asarray(transform, dtype=np.float64) @ np.asarray(c2w, dtype=np.float64)
    out[:, :3, :3] /= scale
    return out


def nearest_depth(c2w: np.ndarray, hints: Hints) -> float | None:
    """Depth of the nearest content along the cameras' axes: LLFF's near bounds, else the points' 1st percentile;
    None when the files say nothing about depth."""
    if hints.depths is not None:
        return float(hints.depths[:, 0].min())
    if hints.points is not None and len(hints.points):
        c2w = np.asarray(c2w, dtype=np.float64)
        depth = np.einsum("npi,ni->np", hints.points[None] - c2w[:, None, :3, 3], optical_axes(c2w))
        ahead = depth[depth > 0]
        return float(np.quantile(ahead, 0.01)) if len(ahead) else None
    return None


def ndc_box(origins: torch.Tensor, directions: torch.Tensor, z_near: float, margin: float = 0.02) -> torch.Tensor:
    """The NDC box ``[6]`` that every NDC ray ``o + t d`` (t in [0, 1]) passes through beyond ``z = z_near``.

    NDC rays are straight lines, so the extremes are at their ends: the rays of a
    view's four corners bound the rest of it. ``z`` runs from ``z_near`` (the
    nearest content) to 1 (infinity); ``margin`` widens x and y a little.
    """
    dz = torch.where(directions[:, 2].abs() < 1e-9, torch.full_like(directions[:, 2], 1e-9), directions[:, 2])
    t0 = ((z_near - origins[:, 2]) / dz).clamp(0.0, 1.0)
    ends = torch.cat([origins + t0[:, None] * directions, origins + directions])
    lo, hi = ends.amin(0), ends.amax(0)
    pad = margin * (hi - lo)
    return torch.tensor([lo[0] - pad[0], lo[1] - pad[1], z_near, hi[0] + pad[0], hi[1] + pad[1], 1.0])


def frame_scene(scene: Scene, kind: str = "auto") -> Scene:
    """The scene framed as ``kind`` (``auto``: what it declares, else what :func:`detect_kind` finds), with the
    choice and its reason in its notes."""
    if kind not in KIND_CHOICES:
        raise InputError(f"--scene-kind must be one of {', '.join(KIND_CHOICES)} (got {kind!r})")
    hints = scene.hints or Hints()
    views = [s for s in scene.splits.values()]
    c2w = torch.cat([s.c2w for s in views]).double().numpy()
    if kind != "auto":
        why = "--scene-kind"
    elif hints.kind is not None:
        kind, why = hints.kind, "declared by the scene"
    else:
        kind, why = detect_kind(c2w, hints)
    if kind == "forward":
        scene = frame_forward(scene, c2w, hints)
    else:
        train = scene.splits["train"]
        if hints.aabb is not None:
            aabb, where = np.asarray(hints.aabb, dtype=np.float64), "the scene's own box"
        elif kind == "object" and hints.format_box is not None:
            aabb, where = np.asarray(hints.format_box, dtype=np.float64), "the box its format implies"
        else:
            aabb = scene_box(kind, c2w, train.intrinsics.double().numpy(), (train.height, train.width), hints.points)
            where = "a box around the region the cameras look at"
        near, far = box_distances(c2w[:, :3, 3], aabb)
        if kind == "object" and hints.aabb is not None and hints.near_far is not None:
            near, far = hints.near_far
        if kind == "unbounded":
            # everything beyond the box is contracted; the cameras stand in it, so rays start just off them
            near, far = UNBOUNDED_NEAR * float(np.max(aabb[3:] - aabb[:3])), UNBOUNDED_FAR * far
        scene = dataclasses.replace(scene, aabb=torch.tensor(aabb, dtype=torch.float32), near=near, far=far,
                                    ndc=False)
        why += f"; {where}" + (", space beyond it contracted" if kind == "unbounded" else "")
    return dataclasses.replace(scene, kind=kind, notes=[f"scene kind: {kind} ({why})", *scene.notes])


def box_distances(centres: np.ndarray, aabb: np.ndarray) -> tuple[float, float]:
    """Smallest distance from any camera centre to the box (0 inside), largest to a box corner."""
    lo, hi = aabb[:3], aabb[3:]
    outside = np.maximum(np.maximum(lo - centres, centres - hi), 0.0)
    farthest = np.maximum(np.abs(centres - lo), np.abs(centres - hi))
    return float(np.linalg.norm(outside, axis=1).min()), float(np.linalg.norm(farthest, axis=1).max())


def frame_forward(scene: Scene, c2w: np.ndarray, hints: Hints) -> Scene:
    """A forward capture recentred and scaled (:func:`forward_transform`), its rays in NDC, its box the one the
    training rays span (:func:`ndc_box`)."""
    near = nearest_depth(c2w, hints)
    note = None
    if near is None:
        target = look_at_point(c2w)
        ahead = np.einsum("ni,ni->n", target - c2w[:, :3, 3], optical_axes(c2w))
        near = 0.5 * float(np.median(ahead)) if np.median(ahead) > 0 else 1.0
        note = f"no depths or points: the nearest content is taken at {near:.3g} from the cameras"
    transform = forward_transform(c2w, near)
    scale = float(np.linalg.norm(transform[:3, 0]))
    splits = {name: dataclasses.replace(s, c2w=torch.tensor(apply_transform(transform, s.c2w.double().numpy()),
                                                            dtype=torch.float32), ndc=True)
              for name, s in scene.splits.items()}
    train = splits["train"]
    corners = torch.tensor([[0, 0], [train.width - 1, 0], [0, train.height - 1], [train.width - 1, train.height - 1]])
    index = torch.arange(len(train)).repeat_interleave(4)
    xs, ys = corners[:, 0].repeat(len(train)), corners[:, 1].repeat(len(train))
    z_near = -1.0
    if hints.depths is not None:  # the nearest content of each view's corners bounds the box from the front
        o, d = (v.double() for v in pixel_rays(train.c2w[index], train.intrinsics[index], xs, ys))
        axes = torch.from_numpy(optical_axes(train.c2w.double().numpy()))[index]
        depth = torch.from_numpy(hints.depths[: len(train), 0] * scale * DEPTH_SLACK)[index]
        z = (o + d * (depth / (d * axes).sum(-1))[:, None])[:, 2]
        z_near = float((1 + 2 / z.clamp(max=-1.0)).min()) if bool((z < 0).all()) else -1.0
    o, d, _ = train.rays(index, ys, xs)
    aabb = ndc_box(o.double(), d.double(), z_near).float()
    notes = [f"forward-facing: poses recentred, scene scaled by {scale:.4g} (nearest content at depth "
             f"1/{NEAR_MARGIN}), rays in NDC with t in [0, 1]; the NDC box spans the training rays"]
    notes += [note] if note else []
    return dataclasses.replace(scene, splits=splits, aabb=aabb, near=0.0, far=1.0, ndc=True,
                               notes=[*notes, *scene.notes])

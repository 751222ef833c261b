"""``spiknerf export mesh``: a triangle mesh of a run's density, with vertex colours from its field.

The density is sampled on a grid over the scene box (:mod:`spiknerf.export.grid`)
and scikit-image's marching cubes extracts the surface where it crosses the
threshold. The grid is padded with empty space, so the surface is closed where
it meets the box. The default threshold is the density at which one march step
of the run's sampler is half opaque, ``σ = ln 2 / δ`` with ``δ`` the scene's
step size (``default_step_size``: the box diagonal over about 2.56 image widths):
where a render of the field turns from seeing through a sample to seeing it.
``--threshold`` sets it.

Unseen parts are culled (``--cull seen``, the default): a face stays only if
each of its vertices lies on the surface that some training view renders (its
pixel's opacity at least one half, its distance from the camera within ``tol``
of the pixel's expected depth, ``tol`` = two grid spacings plus a march step).
No ray of training ever reaches the inside of an object or its underside, so the
density there is unconstrained (a hash grid fills it with whatever its
collisions give), and marching cubes would turn it into inner shells and
floaters. ``--cull none`` keeps everything.

A vertex's colour is the field's colour at the vertex seen head-on: the view
direction is the inward surface normal (the opposite of the mesh's outward
vertex normal), so view-dependent highlights appear as a camera facing the
surface would see them.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
import trimesh
from skimage import measure
from torch import Tensor, nn
from tqdm import tqdm

from spiknerf.atomic import atomic_path
from spiknerf.errors import InputError
from spiknerf.export.grid import CHUNK, DensityGrid, check_resolution, optical_threshold, sample_density
from spiknerf.export.source import held_if_inside, open_run, output_file
from spiknerf.export.views import View, render_view
from spiknerf.nerf.sampler import default_step_size

FORMATS = {".ply": "ply", ".obj": "obj", ".glb": "glb"}


@dataclass
class MeshConfig:
    """Export the surface of a run's density as a coloured triangle mesh."""

    run: str = field(metadata={"help": "run directory"})
    out: str = field(metadata={"help": "output mesh: FILE.ply, FILE.obj or FILE.glb"})
    model: str = field(default="student", metadata={"choices": ("student", "teacher")})
    resolution: int = field(default=256, metadata={"help": "grid points per axis of the scene box"})
    threshold: float | None = field(default=None, metadata={
        "help": "density of the surface (default: ln 2 / the scene's march step)"})
    cull: str = field(default="seen", metadata={"choices": ("seen", "none"),
                                                "help": "drop faces no training view sees as its surface"})
    device: str = field(default="auto", metadata={"choices": ("auto", "cpu", "cuda")})


def extract_surface(grid: DensityGrid, threshold: float) -> trimesh.Trimesh:
    """The ``threshold`` level set of ``grid`` as a mesh in world units, faces wound outwards (density falls
    outwards); an InputError if the density never crosses it."""
    values = np.pad(grid.values, 1)  # empty space around the box closes surfaces that reach it
    top = float(values.max())
    if not 0.0 <= threshold < top:
        raise InputError(f"no surface: the density ranges over [0, {top:.4g}] and the threshold is {threshold:.4g}; "
                         f"set --threshold inside that range")
    verts, faces, _, _ = measure.marching_cubes(values, level=threshold, gradient_direction="ascent")
    return trimesh.Trimesh(grid.points(verts - 1.0), faces, process=False)


@torch.no_grad()
def vertex_colors(field: nn.Module, mesh: trimesh.Trimesh, device: torch.device, chunk: int = CHUNK,
                  progress: bool = True) -> np.ndarray:
    """uint8 RGBA ``[V, 4]``: the field's colour at each vertex, viewed along the inward vertex normal."""
    points = torch.tensor(np.asarray(mesh.vertices), dtype=torch.float32)
    dirs = -torch.tensor(np.asarray(mesh.vertex_normals), dtype=torch.float32)
    dirs = dirs / dirs.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    parts = []
    for p, d in tqdm(zip(points.split(chunk), dirs.split(chunk), strict=True), total=-(-len(points) // chunk),
                     desc="colours", file=sys.stderr, dynamic_ncols=True, disable=not progress):
        parts.append(field(p.to(device), d.to(device))[1].float().cpu())
    rgb = torch.cat(parts) if parts else torch.zeros(0, 3)
    rgba = torch.cat([rgb.clamp(0, 1), torch.ones(len(rgb), 1)], -1)
    return (rgba.numpy() * 255 + 0.5).astype(np.uint8)


def seen_vertices(mesh: trimesh.Trimesh, views: Iterable[tuple[View, Tensor, Tensor]], tol: float) -> np.ndarray:
    """True for the vertices that lie on the surface some view renders: ``views`` yields (view, its
    camera-to-world ``[4, 4]``, intrinsics ``(fx, fy, cx, cy)``)."""
    verts = np.asarray(mesh.vertices, dtype=np.float64)
    seen = np.zeros(len(verts), dtype=bool)
    for view, c2w, intrinsics in views:
        h, w = view.depth.shape
        rot, eye = c2w[:3, :3].double().numpy(), c2w[:3, 3].double().numpy()
        fx, fy, cx, cy = intrinsics.double().tolist()
        cam = (verts - eye) @ rot  # world -> camera frame; the camera looks down -z
        ahead = -cam[:, 2]
        front = ahead > 1e-9
        x = np.full(len(verts), -1, dtype=np.int64)
        y = np.full(len(verts), -1, dtype=np.int64)
        x[front] = np.rint(fx * cam[front, 0] / ahead[front] + cx - 0.5)
        y[front] = np.rint(-fy * cam[front, 1] / ahead[front] + cy - 0.5)
        inside = front & (x >= 0) & (x < w) & (y >= 0) & (y < h)
        xi, yi = x[inside], y[inside]
        depth, opacity = view.depth.numpy()[yi, xi], view.opacity.numpy()[yi, xi]
        distance = np.linalg.norm(cam[inside], axis=1)
        seen[np.flatnonzero(inside)[(opacity >= 0.5) & (np.abs(distance - depth) <= tol)]] = True
    return seen


def cull_unseen(mesh: trimesh.Trimesh, seen: np.ndarray) -> trimesh.Trimesh:
    """The faces whose three vertices are ``seen``, without the vertices no face uses."""
    kept = mesh.copy()
    kept.update_faces(seen[mesh.faces].all(1))
    kept.remove_unreferenced_vertices()
    return kept


def training_views(source, progress: bool = True) -> Iterator[tuple[View, Tensor, Tensor]]:
    """The source's training views rendered one at a time, with their cameras."""
    split = source.scene.splits["train"]
    for i in tqdm(range(len(split)), desc="seen by", unit="view", file=sys.stderr, dynamic_ncols=True,
                  disable=not progress):
        yield render_view(source, split, i), split.c2w[i], split.intrinsics[i]


def write_mesh(mesh: trimesh.Trimesh, out: str) -> None:
    """Write ``mesh`` atomically in the format its suffix names (vertex colours included)."""
    with atomic_path(out) as tmp:
        mesh.export(tmp, file_type=FORMATS[tmp.suffix.lower()])


def export_mesh(cfg: MeshConfig, progress: bool = True) -> tuple[trimesh.Trimesh, float]:
    """The coloured mesh of ``cfg`` and the threshold used, written to ``cfg.out``."""
    check_resolution(cfg.resolution)
    if cfg.threshold is not None and not (cfg.threshold > 0 and math.isfinite(cfg.threshold)):
        raise InputError(f"--threshold must be a positive density (got {cfg.threshold})")
    source = open_run(cfg.run, cfg.model, cfg.device)
    out = output_file(cfg.out, tuple(FORMATS), "mesh")
    scene = source.scene
    step = default_step_size(scene.aabb, scene.splits["train"].width)
    threshold = optical_threshold(step) if cfg.threshold is None else cfg.threshold
    grid = sample_density(source.model, scene.aabb, cfg.resolution, source.device, progress=progress)
    mesh = extract_surface(grid, threshold)
    if cfg.cull == "seen":
        tol = 2 * float(grid.spacing.max()) + step
        mesh = cull_unseen(mesh, seen_vertices(mesh, training_views(source, progress), tol))
        if len(mesh.faces) == 0:
            raise InputError("no surface is left once the faces no training view sees are culled; "
                             "try --cull none or another --threshold")
    mesh.visual.vertex_colors = vertex_colors(source.model, mesh, source.device, progress=progress)
    with held_if_inside(cfg.run, out):
        write_mesh(mesh, str(out))
    return mesh, threshold


def main(cfg: MeshConfig) -> int:
    mesh, threshold = export_mesh(cfg)
    print(f"wrote {cfg.out}: {len(mesh.vertices)} vertices, {len(mesh.faces)} faces, threshold {threshold:.4g}")
    return 0

"""``spiknerf export mesh``: a triangle mesh of a run's density, with vertex colours from its field.

The density is sampled on a grid over the scene box (:mod:`spiknerf.export.grid`)
and scikit-image's marching cubes extracts the surface where it crosses the
threshold. The grid is padded with empty space, so the surface is closed where
it meets the box. The default threshold is the density at which one march step
of the run's sampler is half opaque, ``σ = ln 2 / δ`` with ``δ`` the scene's
step size (``default_step_size``: the box diagonal over about 2.56 image widths):
where a render of the field turns from seeing through a sample to seeing it.
``--threshold`` sets it.

A vertex's colour is the field's colour at the vertex seen head-on: the view
direction is the inward surface normal (the opposite of the mesh's outward
vertex normal), so view-dependent highlights appear as a camera facing the
surface would see them.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np
import torch
import trimesh
from skimage import measure
from torch import nn
from tqdm import tqdm

from spiknerf.atomic import atomic_path
from spiknerf.errors import InputError
from spiknerf.export.grid import CHUNK, DensityGrid, check_resolution, optical_threshold, sample_density
from spiknerf.export.source import held_if_inside, open_run, output_file
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


def write_mesh(mesh: trimesh.Trimesh, out: str) -> None:
    """Write ``mesh`` atomically in the format its suffix names (vertex colours included)."""
    with atomic_path(out) as tmp:
        mesh.export(tmp, file_type=FORMATS[tmp.suffix.lower()])


def export_mesh(cfg: MeshConfig, progress: bool = True) -> tuple[trimesh.Trimesh, float]:
    """The coloured mesh of ``cfg`` and the threshold used, written to ``cfg.out``."""
    check_resolution(cfg.resolution)
    source = open_run(cfg.run, cfg.model, cfg.device)
    out = output_file(cfg.out, tuple(FORMATS), "mesh")
    scene = source.scene
    threshold = cfg.threshold
    if threshold is None:
        threshold = optical_threshold(default_step_size(scene.aabb, scene.splits["train"].width))
    grid = sample_density(source.model, scene.aabb, cfg.resolution, source.device, progress=progress)
    mesh = extract_surface(grid, threshold)
    mesh.visual.vertex_colors = vertex_colors(source.model, mesh, source.device, progress=progress)
    with held_if_inside(cfg.run, out):
        write_mesh(mesh, str(out))
    return mesh, threshold


def main(cfg: MeshConfig) -> int:
    mesh, threshold = export_mesh(cfg)
    print(f"wrote {cfg.out}: {len(mesh.vertices)} vertices, {len(mesh.faces)} faces, threshold {threshold:.4g}")
    return 0

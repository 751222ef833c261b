"""How close an exported mesh lies to a known surface: Chamfer distance and normal consistency.

For the built-in scene the true surface comes from its generator's own shapes
(:mod:`spiknerf.nerf.data.builtin`): rays from eyes placed as its training cameras
are placed (the upper hemisphere) are traced against them, and their first hits
are points of the surface those cameras can see, with exact normals: what a
NeRF of its views can know. The pedestal's underside, and faces hidden where
shapes touch, are not in it. The hits are thinned to one per cube
of side ``voxel`` so that the sample is near uniform over the area.

Distances between the two sets are nearest-neighbour distances (a k-d tree):
``accuracy`` is the mean distance from mesh samples to the true surface,
``completeness`` from true points to the mesh samples, and the Chamfer distance
their mean. Normal consistency is the mean ``|n_mesh . n_true|`` over the same
nearest pairs, both ways (1: every normal agrees).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import trimesh
from scipy.spatial import cKDTree


def thin(points: np.ndarray, voxel: float) -> np.ndarray:
    """Indices keeping one point per cube of side ``voxel``."""
    keys = np.floor(points / voxel).astype(np.int64)
    _, first = np.unique(keys, axis=0, return_index=True)
    return np.sort(first)


def builtin_surface(rays: int = 1 << 22, voxel: float = 0.004, seed: int = 0,
                    batch: int = 1 << 18) -> tuple[np.ndarray, np.ndarray]:
    """Points ``[N, 3]`` and outward unit normals on the built-in scene's surface as its training cameras see
    it: rays from eyes spread as the generator spreads its cameras (radius ``CAMERA_RADIUS``, elevations
    ``ELEVATION_DEG``, uniform over the sphere's area) towards random points of the box."""
    from spiknerf.nerf.data.builtin import CAMERA_RADIUS, ELEVATION_DEG, scene_shapes, trace

    shapes = scene_shapes()
    gen = torch.Generator().manual_seed(seed)
    lo, hi = (math.sin(math.radians(e)) for e in ELEVATION_DEG)
    points, normals = [], []
    for start in range(0, rays, batch):
        n = min(batch, rays - start)
        z = lo + (hi - lo) * torch.rand(n, generator=gen)
        azimuth = 2 * math.pi * torch.rand(n, generator=gen)
        ring = (1 - z * z).sqrt()
        eye = CAMERA_RADIUS * torch.stack([ring * azimuth.cos(), ring * azimuth.sin(), z], -1)
        target = (torch.rand(n, 3, generator=gen) * 2 - 1) * 1.3
        d = torch.nn.functional.normalize(target - eye, dim=-1)
        hit, _ = trace(shapes, eye, d)
        ok = torch.isfinite(hit.t)
        points.append((eye[ok] + hit.t[ok, None] * d[ok]).numpy())
        normals.append(hit.normal[ok].numpy())
    p, nrm = np.concatenate(points), np.concatenate(normals)
    keep = thin(p, voxel)
    return p[keep], nrm[keep] / np.linalg.norm(nrm[keep], axis=1, keepdims=True)


def mesh_samples(mesh: trimesh.Trimesh, count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``count`` points drawn uniformly over the mesh's area, with their faces' unit normals."""
    points, faces = trimesh.sample.sample_surface(mesh, count, seed=seed)
    return np.asarray(points), np.asarray(mesh.face_normals)[faces]


def surface_distances(points: np.ndarray, normals: np.ndarray, true_points: np.ndarray,
                      true_normals: np.ndarray) -> dict[str, float]:
    """Accuracy, completeness, Chamfer distance (scene units) and normal consistency of a sampled surface."""
    d_acc, i_acc = cKDTree(true_points).query(points)
    d_comp, i_comp = cKDTree(points).query(true_points)
    nc_acc = np.abs((normals * true_normals[i_acc]).sum(1)).mean()
    nc_comp = np.abs((true_normals * normals[i_comp]).sum(1)).mean()
    return {"accuracy": float(d_acc.mean()), "completeness": float(d_comp.mean()),
            "chamfer": float((d_acc.mean() + d_comp.mean()) / 2), "normal_consistency": float((nc_acc + nc_comp) / 2),
            "accuracy_p90": float(np.percentile(d_acc, 90)), "completeness_p90": float(np.percentile(d_comp, 90))}


def extent(aabb: np.ndarray) -> float:
    """A scene's extent: the longest side of its box."""
    box = np.asarray(aabb, dtype=np.float64).reshape(2, 3)
    return float((box[1] - box[0]).max())

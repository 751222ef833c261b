"""Pictures of exports without a graphics stack: coloured points splatted through a pinhole with a depth test.

A mesh is drawn as a dense sample of its surface, each point shaded by the
Lambert term of its face normal under a light at the camera (grey), or with its
vertex colours; a point cloud is drawn as it is. Every point covers one pixel,
nearest wins.
"""

from __future__ import annotations

import numpy as np
import torch
import trimesh

from spiknerf.nerf.rays import look_at


def camera(eye: tuple[float, float, float], target: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> np.ndarray:
    """Camera-to-world ``[4, 4]`` at ``eye`` looking at ``target``, z up (OpenGL convention)."""
    return look_at(torch.tensor(eye), torch.tensor(target), torch.tensor([0.0, 0.0, 1.0])).numpy()


def splat(points: np.ndarray, colors: np.ndarray, c2w: np.ndarray, focal: float, size: int,
          background: float = 1.0) -> np.ndarray:
    """uint8 ``[size, size, 3]``: ``points`` ``[N, 3]`` with ``colors`` ``[N, 3]`` in [0, 1], nearest in front."""
    rot, eye = c2w[:3, :3], c2w[:3, 3]
    cam = (points - eye) @ rot  # world -> camera: R^T (p - t), as rows
    z = -cam[:, 2]
    front = z > 1e-6
    x = np.floor(focal * cam[front, 0] / z[front] + size / 2).astype(np.int64)
    y = np.floor(-focal * cam[front, 1] / z[front] + size / 2).astype(np.int64)
    inside = (x >= 0) & (x < size) & (y >= 0) & (y < size)
    pixel, depth, color = (y * size + x)[inside], z[front][inside], colors[front][inside]
    nearest = np.full(size * size, np.inf)
    np.minimum.at(nearest, pixel, depth)
    win = depth <= nearest[pixel]
    image = np.full((size * size, 3), background, dtype=np.float64)
    image[pixel[win]] = color[win]
    return (np.clip(image.reshape(size, size, 3), 0, 1) * 255 + 0.5).astype(np.uint8)


def mesh_picture(mesh: trimesh.Trimesh, c2w: np.ndarray, focal: float, size: int, colored: bool,
                 samples_per_pixel: float = 8.0, seed: int = 0) -> np.ndarray:
    """A shaded (``colored=False``) or vertex-coloured view of ``mesh``."""
    count = int(samples_per_pixel * size * size)
    if colored:
        points, faces, rgba = trimesh.sample.sample_surface(mesh, count, sample_color=True, seed=seed)
        colors = np.asarray(rgba, dtype=np.float64)[:, :3] / 255.0
    else:
        points, faces = trimesh.sample.sample_surface(mesh, count, seed=seed)
        light = c2w[:3, 2]  # towards the camera
        lambert = np.abs(np.asarray(mesh.face_normals)[faces] @ light)
        colors = (0.2 + 0.75 * lambert)[:, None] * np.array([0.85, 0.85, 0.82])
    return splat(np.asarray(points), colors, c2w, focal, size)

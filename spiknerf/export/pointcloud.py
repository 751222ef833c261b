"""``spiknerf export pointcloud``: coloured points from the rendered depth of a run's training views.

Each pixel whose opacity reaches ``--min-opacity`` gives the point at its ray's
expected surface depth (:mod:`spiknerf.export.views`), coloured with the
rendered colour with the background taken out (``(rgb - (1 - α) bg) / α``).
Outliers are then dropped by statistical outlier removal: a point goes when its
mean distance to its ``k`` nearest neighbours exceeds the mean of that distance
over all points by more than ``std_ratio`` standard deviations.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np
import trimesh
from scipy.spatial import cKDTree
from tqdm import tqdm

from spiknerf.atomic import atomic_path
from spiknerf.errors import InputError
from spiknerf.export.source import held_if_inside, open_run, output_file
from spiknerf.export.views import render_view
from spiknerf.nerf.run import eval_background

MAX_POINTS = 1 << 24


@dataclass
class PointCloudConfig:
    """Export a coloured point cloud from the rendered depth of a run's training views."""

    run: str = field(metadata={"help": "run directory"})
    out: str = field(metadata={"help": "output point cloud: FILE.ply"})
    model: str = field(default="student", metadata={"choices": ("student", "teacher")})
    views: int = field(default=0, metadata={"help": "training views used, evenly spread (0: all)"})
    min_opacity: float = field(default=0.95, metadata={"help": "pixels below this opacity give no point"})
    neighbours: int = field(default=16, metadata={"help": "k of the outlier removal (0: keep every point)"})
    std_ratio: float = field(default=2.0, metadata={"help": "outliers lie this many deviations above the mean"})
    device: str = field(default="auto", metadata={"choices": ("auto", "cpu", "cuda")})


def outlier_mask(points: np.ndarray, k: int, std_ratio: float) -> np.ndarray:
    """True for the points kept by statistical outlier removal (all of them when there are too few)."""
    if k < 1 or len(points) <= k:
        return np.ones(len(points), dtype=bool)
    dist, _ = cKDTree(points).query(points, k=k + 1)  # the first neighbour is the point itself
    mean = dist[:, 1:].mean(1)
    return mean <= mean.mean() + std_ratio * mean.std()


def view_indices(total: int, views: int) -> list[int]:
    """``views`` indices spread evenly over ``total`` (all of them for 0 or more than there are)."""
    if views <= 0 or views >= total:
        return list(range(total))
    return sorted({int(i) for i in np.linspace(0, total - 1, views).round()})


def export_pointcloud(cfg: PointCloudConfig, progress: bool = True) -> trimesh.PointCloud:
    """The point cloud of ``cfg``, written to ``cfg.out``."""
    if not 0.0 < cfg.min_opacity <= 1.0:
        raise InputError(f"--min-opacity must be in (0, 1] (got {cfg.min_opacity})")
    if cfg.views < 0 or cfg.neighbours < 0 or cfg.std_ratio <= 0:
        raise InputError("--views and --neighbours must be >= 0 and --std-ratio > 0")
    source = open_run(cfg.run, cfg.model, cfg.device)
    out = output_file(cfg.out, (".ply",), "point cloud")
    split = source.scene.splits["train"]
    background = eval_background(source.scene).numpy()
    points, colors = [], []
    for i in tqdm(view_indices(len(split), cfg.views), desc="views", unit="view", file=sys.stderr,
                  dynamic_ncols=True, disable=not progress):
        view = render_view(source, split, i)
        keep = (view.opacity >= cfg.min_opacity).reshape(-1)
        depth = view.depth.reshape(-1, 1)[keep]
        points.append((view.origins[keep] + view.dirs[keep] * depth).numpy())
        alpha = view.opacity.reshape(-1, 1)[keep].numpy()
        rgb = (view.rgb.reshape(-1, 3)[keep].numpy() - (1.0 - alpha) * background) / alpha
        colors.append(rgb)
        if sum(len(p) for p in points) > MAX_POINTS:
            raise InputError(f"more than {MAX_POINTS} points; use fewer --views or a higher --min-opacity")
    xyz = np.concatenate(points) if points else np.zeros((0, 3))
    rgb = np.concatenate(colors) if colors else np.zeros((0, 3))
    kept = outlier_mask(xyz, cfg.neighbours, cfg.std_ratio)
    rgba = np.concatenate([np.clip(rgb[kept], 0, 1), np.ones((int(kept.sum()), 1))], 1)
    cloud = trimesh.PointCloud(xyz[kept], colors=(rgba * 255 + 0.5).astype(np.uint8))
    with held_if_inside(cfg.run, out), atomic_path(out) as tmp:
        cloud.export(tmp, file_type="ply")
    return cloud


def main(cfg: PointCloudConfig) -> int:
    cloud = export_pointcloud(cfg)
    print(f"wrote {cfg.out}: {len(cloud.vertices)} points")
    return 0

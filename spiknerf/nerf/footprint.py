"""What resolution and march step a scene's grids get, from the footprint of its pixels.

A hash grid finer than the pixels it is fitted to has cells no pixel pins down;
a coarser one blurs. Each kind of scene (:mod:`spiknerf.nerf.data.framing`)
maps pixels to its box differently:

* ``forward`` (NDC): the average camera's image spans ``[-1, 1]`` in NDC x and
  y, so a pixel is ``2 / W`` wide there, and the box that all training rays
  cross (wider than ``[-1, 1]``: the other cameras look elsewhere) gets as many
  cells per axis as pixels fit across it; depth (NDC z, even in disparity) gets
  :data:`NDC_DEPTH_CELLS` cells per unit, twice the density of the march's samples.
* ``object``: the grid's own resolution across the box, as before.
* ``unbounded``: the box fills the middle half of the contracted cube, so the
  grid gets twice the resolution to keep the box's.

The march step in NDC is even in ``t``, which spans near plane to infinity.
"""

from __future__ import annotations

import math

from spiknerf.nerf.data import Scene
from spiknerf.nerf.sampler import default_step_size

COARSEST = 16  # the hash grid's base resolution
FINEST = 512  # the fast preset's finest hash-grid resolution across an object's box
NDC_STEPS = 128  # march steps from the NDC near plane to infinity (t in [0, 1]); 256 read no better
NDC_DEPTH_CELLS = 128  # hash-grid cells per unit of NDC z (the march takes NDC_STEPS / 2 steps a unit)


def grid_resolution(scene: Scene, finest: int = FINEST) -> tuple[int, int, int]:
    """The finest hash-grid resolution per axis for ``scene``."""
    if scene.ndc:
        train = scene.splits["train"]
        extent = (scene.aabb[3:] - scene.aabb[:3]).tolist()
        x = math.ceil(extent[0] * train.width / 2)
        y = math.ceil(extent[1] * train.height / 2)
        # never coarser than the hash grid's base level (tiny images)
        return (max(COARSEST, x), max(COARSEST, y), max(COARSEST, math.ceil(extent[2] * NDC_DEPTH_CELLS)))
    if scene.unbounded:
        return (2 * finest,) * 3
    return (finest,) * 3


def march_step(scene: Scene) -> float:
    """The occupancy-grid sampler's step: even in NDC ``t``; else a little finer than a pixel's footprint."""
    if scene.ndc:
        return 1.0 / NDC_STEPS
    return default_step_size(scene.aabb, scene.splits["train"].width)

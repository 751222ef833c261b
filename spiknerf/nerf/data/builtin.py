"""The built-in scene: textured analytic shapes, ray traced on the CPU, written in the Blender format.

``default_scene_path()`` is where it lives: the user cache dir, where it is rendered
on first use, so that ``spiknerf train`` with no arguments needs no download.

A round pedestal with a colour-wheel top carries a striped glossy sphere, a
rotated colour-gradient box and a banded column; a small glossy sphere floats
above. Shading is ambient (brighter from above) plus Lambert diffuse under a
key light whose soft shadows come from several shadow rays per pixel, plus a
Blinn-Phong highlight, the view-dependent part::

    c = albedo * (ambient(n) + k_d max(n.l, 0) vis) + k_s max(n.h, 0)^shininess vis,   h = |l + v|

with ``vis`` the fraction of the light's shadow rays that escape. Pixels are
supersampled and area-filtered, and the background is transparent (alpha =
coverage). Everything lies in [-1.5, 1.5]^3; cameras sit on the upper hemisphere
of radius 4 looking at the origin, so the Blender bounds (near 2, far 6) apply.
The textures vary smoothly so that a hash-grid NeRF learns the scene quickly.

Rendering is deterministic: the same :class:`SceneSpec` gives the same files.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

import imageio.v3 as iio
import numpy as np
import torch
from torch import Tensor

from spiknerf.errors import InputError
from spiknerf.nerf.data.cache import user_cache_dir
from spiknerf.nerf.data.images import downscale_float, quantize
from spiknerf.nerf.rays import focal_from_fov, look_at, pixel_rays

# Bump when the scene's content changes, so that cached copies are re-rendered.
SCENE_VERSION = 1
SCENE_NAME = "shapes"
CAMERA_ANGLE_X = 0.7  # radians, about lego's 0.691
CAMERA_RADIUS = 4.0
ELEVATION_DEG = (8.0, 80.0)  # views between these elevations, uniform over the sphere's area
SUPERSAMPLE = 2  # rays per pixel side
EPS = 1e-4
INF = float("inf")


@dataclass(frozen=True)
class SceneSpec:
    """What to render: image size, numbers of views, camera seed."""

    size: int = field(default=128, metadata={"help": "image width and height in pixels"})
    views: int = field(default=100, metadata={"help": "training views"})
    test_views: int = field(default=20, metadata={"help": "test views"})
    seed: int = field(default=0, metadata={"help": "seed of the random camera positions"})

    def check(self) -> None:
        if self.size < 8:
            raise InputError(f"--size must be >= 8 (got {self.size})")
        if self.views < 1 or self.test_views < 1:
            raise InputError(f"--views and --test-views must be >= 1 (got {self.views}, {self.test_views})")


class Hit(NamedTuple):
    """Nearest intersection per ray: distance (inf on a miss) and unit normal."""

    t: Tensor  # [n]
    normal: Tensor  # [n, 3]


def _first_positive(t0: Tensor, t1: Tensor) -> Tensor:
    """The smaller of two ordered roots that lies in front of the origin, else inf."""
    return torch.where(t0 > EPS, t0, torch.where(t1 > EPS, t1, torch.full_like(t0, INF)))


def hit_sphere(o: Tensor, d: Tensor, centre: Tensor, radius: float) -> Hit:
    oc = o - centre
    b = (oc * d).sum(-1)
    disc = b * b - ((oc * oc).sum(-1) - radius * radius)
    root = disc.clamp(min=0).sqrt()
    t = torch.where(disc > 0, _first_positive(-b - root, -b + root), INF)
    normal = (o + t.clamp(max=1e6).unsqueeze(-1) * d - centre) / radius
    return Hit(t, normal)


def hit_box(o: Tensor, d: Tensor, centre: Tensor, half: Tensor, angle: float) -> Hit:
    """A box with half-extents ``half`` rotated by ``angle`` about the vertical axis (slab method)."""
    c, s = math.cos(angle), math.sin(angle)
    rot = torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    ol, dl = (o - centre) @ rot, d @ rot  # world -> box frame (rows times R = R^T applied)
    dl = torch.where(dl.abs() < 1e-9, torch.full_like(dl, 1e-9), dl)
    t1, t2 = (-half - ol) / dl, (half - ol) / dl
    near, axis = torch.minimum(t1, t2).max(-1)
    far = torch.maximum(t1, t2).min(-1).values
    t = torch.where(far >= near.clamp(min=EPS), _first_positive(near, far), INF)
    local = torch.zeros_like(ol).scatter_(-1, axis.unsqueeze(-1), 1.0) * -torch.sign(dl)
    return Hit(t, local @ rot.T)


def hit_column(o: Tensor, d: Tensor, centre: Tensor, radius: float, z0: float, z1: float) -> Hit:
    """A vertical capped cylinder over ``centre = (x, y)`` from height ``z0`` to ``z1``."""
    oxy, dxy = o[:, :2] - centre, d[:, :2]
    a = (dxy * dxy).sum(-1).clamp(min=1e-12)
    b = (oxy * dxy).sum(-1)
    disc = b * b - a * ((oxy * oxy).sum(-1) - radius * radius)
    root = disc.clamp(min=0).sqrt()
    candidates = []
    for t in ((-b - root) / a, (-b + root) / a):
        z = o[:, 2] + t * d[:, 2]
        candidates.append(torch.where((disc > 0) & (t > EPS) & (z >= z0) & (z <= z1), t, INF))
    dz = torch.where(d[:, 2].abs() < 1e-9, torch.full_like(d[:, 2], 1e-9), d[:, 2])
    for zc in (z0, z1):
        t = (zc - o[:, 2]) / dz
        r2 = ((oxy + t.unsqueeze(-1) * dxy) ** 2).sum(-1)
        candidates.append(torch.where((t > EPS) & (r2 <= radius * radius), t, INF))
    t, which = torch.stack(candidates).min(0)
    p = oxy + t.clamp(max=1e6).unsqueeze(-1) * dxy
    side = torch.cat([p / radius, torch.zeros_like(t).unsqueeze(-1)], -1)
    cap = torch.zeros_like(side)
    cap[:, 2] = torch.where(which == 2, -1.0, 1.0)
    return Hit(t, torch.where((which < 2).unsqueeze(-1), side, cap))


def _mix(a: tuple[float, ...], b: tuple[float, ...], s: Tensor) -> Tensor:
    s = s.unsqueeze(-1)
    return torch.tensor(a) * (1 - s) + torch.tensor(b) * s


def _hsv(h: Tensor, s: Tensor, v: Tensor) -> Tensor:
    """HSV (hue in [0, 1), wrapping) to RGB, ``[n, 3]``."""
    k = (torch.tensor([5.0, 3.0, 1.0]) + 6.0 * h.unsqueeze(-1)) % 6.0
    ramp = torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0)
    return v.unsqueeze(-1) * (1.0 - s.unsqueeze(-1) * ramp)


class Shape(NamedTuple):
    """A primitive with its material."""

    hit: Callable[[Tensor, Tensor], Hit]
    albedo: Callable[[Tensor, Tensor], Tensor]  # (point, normal) -> rgb [n, 3]
    specular: float
    shininess: float


PEDESTAL_RADIUS, PEDESTAL_TOP = 1.25, -0.6


def _pedestal_albedo(p: Tensor, n: Tensor) -> Tensor:
    r = p[:, :2].norm(dim=-1)
    hue = (torch.atan2(p[:, 1], p[:, 0]) / (2 * math.pi)) % 1.0
    top = _hsv(hue, 0.3 + 0.4 * r / PEDESTAL_RADIUS, 0.8 + 0.12 * torch.cos(2 * math.pi * r / 0.42))
    side = torch.tensor([0.30, 0.33, 0.40]).expand_as(top)
    return torch.where((n[:, 2] > 0.5).unsqueeze(-1), top, side)


def _striped_albedo() -> Callable[[Tensor, Tensor], Tensor]:
    def albedo(p: Tensor, n: Tensor) -> Tensor:
        latitude = torch.asin(n[:, 2].clamp(-1, 1))
        return _mix((0.80, 0.16, 0.12), (0.98, 0.74, 0.22), 0.5 + 0.5 * torch.sin(6 * latitude + 1.0))

    return albedo


def _gradient_albedo(centre: Tensor, half: float) -> Callable[[Tensor, Tensor], Tensor]:
    def albedo(p: Tensor, n: Tensor) -> Tensor:
        q = ((p - centre) / half).clamp(-1, 1)
        return 0.15 + 0.75 * (q + 1) / 2

    return albedo


def _banded_albedo(z0: float) -> Callable[[Tensor, Tensor], Tensor]:
    def albedo(p: Tensor, n: Tensor) -> Tensor:
        s = 0.5 + 0.5 * torch.cos(2 * math.pi * (p[:, 2] - z0) / 0.35)
        return _mix((0.10, 0.52, 0.30), (0.86, 0.92, 0.74), s)

    return albedo


def _glossy_albedo(p: Tensor, n: Tensor) -> Tensor:
    return _mix((0.18, 0.32, 0.85), (0.95, 0.95, 0.95), torch.exp(-((n[:, 2] / 0.3) ** 2)))


def scene_shapes() -> list[Shape]:
    """The primitives of the built-in scene."""
    red = torch.tensor([0.45, 0.30, PEDESTAL_TOP + 0.42])
    box = torch.tensor([-0.40, -0.35, PEDESTAL_TOP + 0.30])
    column = torch.tensor([-0.35, 0.55])
    blue = torch.tensor([0.30, -0.45, 0.40])
    return [
        Shape(lambda o, d: hit_column(o, d, torch.zeros(2), PEDESTAL_RADIUS, -0.75, PEDESTAL_TOP),
              _pedestal_albedo, 0.05, 8.0),
        Shape(lambda o, d: hit_sphere(o, d, red, 0.42), _striped_albedo(), 0.5, 30.0),
        Shape(lambda o, d: hit_box(o, d, box, torch.full((3,), 0.3), 0.5), _gradient_albedo(box, 0.45), 0.15, 12.0),
        Shape(lambda o, d: hit_column(o, d, column, 0.17, PEDESTAL_TOP, 0.45), _banded_albedo(PEDESTAL_TOP), 0.3, 20.0),
        Shape(lambda o, d: hit_sphere(o, d, blue, 0.2), _glossy_albedo, 0.7, 50.0),
    ]


def trace(shapes: list[Shape], o: Tensor, d: Tensor) -> tuple[Hit, Tensor]:
    """Nearest hit over all shapes and the index of the shape hit (meaningless on a miss)."""
    hits = [s.hit(o, d) for s in shapes]
    t, which = torch.stack([h.t for h in hits]).min(0)
    normals = torch.stack([h.normal for h in hits])  # [S, n, 3]
    normal = normals.gather(0, which.view(1, -1, 1).expand(1, -1, 3)).squeeze(0)
    return Hit(t, normal), which


LIGHT = torch.tensor([0.45, -0.35, 0.82]) / torch.tensor([0.45, -0.35, 0.82]).norm()
LIGHT_SPREAD = 0.08  # radius of the key light's disc of shadow directions, in radians
LIGHT_SAMPLES = 6
AMBIENT, AMBIENT_SKY, DIFFUSE = 0.30, 0.12, 0.80


def light_directions() -> Tensor:
    """The key light's direction and a ring of directions around it (soft shadows), ``[L, 3]``."""
    u = torch.linalg.cross(LIGHT, torch.tensor([0.0, 0.0, 1.0]))
    u = u / u.norm()
    w = torch.linalg.cross(LIGHT, u)
    angles = torch.arange(LIGHT_SAMPLES - 1) * (2 * math.pi / (LIGHT_SAMPLES - 1))
    ring = LIGHT + LIGHT_SPREAD * (torch.cos(angles)[:, None] * u + torch.sin(angles)[:, None] * w)
    dirs = torch.cat([LIGHT[None], ring])
    return dirs / dirs.norm(dim=-1, keepdim=True)


def shade(shapes: list[Shape], o: Tensor, d: Tensor) -> tuple[Tensor, Tensor]:
    """Colour ``[n, 3]`` and coverage ``[n]`` (1 where a shape is hit) of rays ``(o, d)``."""
    hit, which = trace(shapes, o, d)
    covered = torch.isfinite(hit.t)
    rgb = torch.zeros_like(o)
    if not covered.any():
        return rgb, covered.float()
    p = o[covered] + hit.t[covered, None] * d[covered]
    n, k = hit.normal[covered], which[covered]
    # Shadow rays start slightly off the surface so they do not hit it again.
    start = p + 1e-3 * n
    vis = torch.stack([torch.isinf(trace(shapes, start, l.expand_as(p))[0].t) for l in light_directions()])
    vis = vis.float().mean(0)
    albedo = torch.zeros_like(p)
    ks, shininess = torch.zeros(len(p)), torch.ones(len(p))
    for i, s in enumerate(shapes):
        m = k == i
        if m.any():
            albedo[m] = s.albedo(p[m], n[m])
            ks[m], shininess[m] = s.specular, s.shininess
    n_dot_l = (n * LIGHT).sum(-1)
    half = LIGHT - d[covered]
    half = half / half.norm(dim=-1, keepdim=True)
    highlight = ks * (n * half).sum(-1).clamp(min=0) ** shininess * (n_dot_l > 0)
    light = AMBIENT + AMBIENT_SKY * n[:, 2] + DIFFUSE * n_dot_l.clamp(min=0) * vis
    rgb[covered] = (albedo * light.unsqueeze(-1) + (highlight * vis).unsqueeze(-1)).clamp(0, 1)
    return rgb, covered.float()


def render_view(c2w: Tensor, size: int, shapes: list[Shape] | None = None) -> np.ndarray:
    """One ``size x size`` RGBA uint8 view through a camera at ``c2w`` with ``CAMERA_ANGLE_X``."""
    shapes = shapes if shapes is not None else scene_shapes()
    hi = size * SUPERSAMPLE
    f = focal_from_fov(hi, CAMERA_ANGLE_X)
    ys, xs = torch.meshgrid(torch.arange(hi), torch.arange(hi), indexing="ij")
    o, d = pixel_rays(c2w, torch.tensor([f, f, hi / 2, hi / 2]), xs.reshape(-1), ys.reshape(-1))
    rgb, alpha = shade(shapes, o, d)
    rgba = torch.cat([rgb, alpha.unsqueeze(-1)], -1).reshape(hi, hi, 4).numpy()
    return quantize(downscale_float(rgba, (size, size)))


def camera_poses(count: int, rng: np.random.Generator) -> list[Tensor]:
    """``count`` cameras at ``CAMERA_RADIUS`` on the upper hemisphere, looking at the origin."""
    lo, hi = (math.sin(math.radians(e)) for e in ELEVATION_DEG)
    z = rng.uniform(lo, hi, count)
    azimuth = rng.uniform(0.0, 2 * math.pi, count)
    ring = np.sqrt(1 - z * z)
    eyes = CAMERA_RADIUS * np.stack([ring * np.cos(azimuth), ring * np.sin(azimuth), z], -1)
    return [look_at(torch.tensor(e, dtype=torch.float32), torch.zeros(3), torch.tensor([0.0, 0.0, 1.0]))
            for e in eyes]


def write_scene(out: str | Path, spec: SceneSpec = SceneSpec()) -> Path:
    """Render ``spec`` into the new folder ``out`` (Blender format); returns ``out``.

    The folder appears complete or not at all: it is written under a temporary
    name beside ``out`` and renamed.
    """
    spec.check()
    out = Path(out)
    if out.exists():
        raise InputError(f"{out} already exists; choose another --out or remove it")
    with rendering_into(out) as tmp:
        rng = np.random.default_rng(spec.seed)
        shapes = scene_shapes()
        generator = {"name": SCENE_NAME, "version": SCENE_VERSION, **asdict(spec)}
        for split, count in (("train", spec.views), ("test", spec.test_views)):
            (tmp / split).mkdir()
            frames = []
            for i, c2w in enumerate(camera_poses(count, rng)):
                iio.imwrite(tmp / split / f"r_{i}.png", render_view(c2w, spec.size, shapes))
                frames.append({"file_path": f"./{split}/r_{i}", "transform_matrix": c2w.tolist()})
            meta = {"camera_angle_x": CAMERA_ANGLE_X, "generator": generator, "frames": frames}
            (tmp / f"transforms_{split}.json").write_text(json.dumps(meta, indent=2) + "\n")
    return out


@contextmanager
def rendering_into(out: Path) -> Iterator[Path]:
    """Yield a new temporary folder beside ``out`` to render a scene into, with torch on one thread; on success
    it is renamed to ``out`` (which appears complete or not at all), on failure removed. torch's threads are
    restored either way.

    One thread: a view is a few tens of thousands of rays, thread barriers cost more than they
    give, and on a busy CPU two threads rendered a view far more slowly than one.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield tmp
        os.rename(tmp, out)
    finally:
        torch.set_num_threads(threads)
        if tmp.exists():
            shutil.rmtree(tmp)


def default_scene_path() -> Path:
    """The built-in scene's folder (Blender format), rendered on first use."""
    path = user_cache_dir() / "scenes" / f"{SCENE_NAME}-v{SCENE_VERSION}"
    if not path.is_dir():
        print(f"rendering the built-in scene into {path} (first use only)", file=sys.stderr)
        try:
            write_scene(path)
        except (InputError, OSError):
            if not path.is_dir():  # another process may have finished it first
                raise
    return path

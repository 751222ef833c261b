"""Ray samplers behind one interface: occupancy-grid marching on two backends, and coarse-to-fine.

``sample(origins, dirs, sigma_fn, stratified)`` returns packed samples sorted by
ray (``RaySamples``): the sample intervals ``[t_start, t_end)`` along unit
directions and the ray each belongs to.

* :class:`OccupancyGridSampler` (pure torch, the CPU backend): uniform steps of
  ``step_size`` inside the scene box (for an unbounded scene, whose grid covers
  contracted space, also before it, and beyond it steps even in disparity out to
  ``far``: :func:`march_unbounded`), samples in empty grid cells skipped, and,
  given ``sigma_fn``, samples behind spent transmittance (< ``early_stop_eps``)
  or below ``alpha_thre`` dropped after a gradient-free density pass that
  runs front to back in a few rounds, skipping rays already spent (given
  ``shade_fn`` instead, the rounds also keep what else it gives at each sample:
  the colour, so that rendering without gradients reads each sample's encoding
  once, or a distilling teacher's features for its colour). All
  rays are marched at once as a ``[rays, steps]`` mask: no Python loop over rays
  or samples. The grid holds an exponential moving maximum of ``density x
  step`` per cell, starting at 0 so that it prunes early.
* :class:`NerfaccOccupancySampler` (CUDA): the same grid and options on
  nerfacc's ``OccGridEstimator`` (its CUDA extension compiles on first use;
  see :func:`nerfacc_cuda` for when the pure-torch paths run on CUDA instead).
* :class:`CoarseToFineSampler` (the ``paper`` preset): NeRF's 64 stratified
  samples, then 128 more drawn from the coarse weights (``sample_pdf``).
"""

from __future__ import annotations

import functools
import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from spiknerf.kernels import CpuCompiled
from spiknerf.nerf.contraction import from_unit, to_unit

SigmaFn = Callable[[Tensor], Tensor]  # world points [S, 3] -> density [S]
# points [S, 3], their rays [S] -> density [S] and what else the caller keeps of each sample [S, k] (a colour, say)
ShadeFn = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]


@functools.cache
def nerfacc_cuda() -> bool:
    """Whether nerfacc's CUDA kernels serve marching and packed compositing.

    True with a CUDA device once nerfacc's extension loads; its first load
    compiles it (minutes, needs nvcc). ``SPIKNERF_NERFACC_CUDA=0`` skips it. A
    build that fails warns once; either way the pure-torch paths, which run on
    any device, take over.
    """
    if not torch.cuda.is_available() or os.environ.get("SPIKNERF_NERFACC_CUDA", "1") == "0":
        return False
    try:
        from nerfacc.cuda._backend import _C
    except Exception as exc:  # a compiler or toolkit mismatch surfaces as any exception type
        reason = f"{type(exc).__name__}: {exc}"
    else:
        if _C is not None:
            return True
        reason = "no CUDA toolkit (nvcc) to build it"
    warnings.warn(f"nerfacc's CUDA extension is unavailable ({reason}); the pure-torch paths run on CUDA",
                  stacklevel=2)
    return False


@dataclass
class RaySamples:
    """Packed samples: ``ray_indices`` is sorted, all tensors are ``[S]``."""

    ray_indices: Tensor
    t_starts: Tensor
    t_ends: Tensor
    n_rays: int
    # where the sampler shaded them (``shade_fn``): the density at the samples, and what else the shading gave
    sigmas: Tensor | None = None
    values: Tensor | None = None

    def __len__(self) -> int:
        return int(self.ray_indices.shape[0])

    def points(self, origins: Tensor, dirs: Tensor) -> tuple[Tensor, Tensor]:
        """Mid-interval points and the unit directions of their rays, ``[S, 3]`` each."""
        d = dirs[self.ray_indices]
        mid = (self.t_starts + self.t_ends)[:, None] * 0.5
        return origins[self.ray_indices] + d * mid, d


def ray_aabb(origins: Tensor, dirs: Tensor, aabb: Tensor) -> tuple[Tensor, Tensor]:
    """Entry and exit distances of rays through the box (slab method); exit < entry means a miss."""
    inv = 1.0 / torch.where(dirs.abs() < 1e-9, torch.full_like(dirs, 1e-9), dirs)
    t_lo = (aabb[:3] - origins) * inv
    t_hi = (aabb[3:] - origins) * inv
    return torch.minimum(t_lo, t_hi).amax(-1), torch.maximum(t_lo, t_hi).amin(-1)


def packed_to_padded(values: Tensor, ray_indices: Tensor, n_rays: int, fill: float = 0.0) -> Tensor:
    """Scatter packed per-sample values ``[S, ...]`` into ``[n_rays, max samples per ray, ...]``."""
    counts = torch.bincount(ray_indices, minlength=n_rays)
    width = int(counts.max()) if len(ray_indices) else 0
    starts = torch.cumsum(counts, 0) - counts
    col = torch.arange(len(ray_indices), device=values.device) - starts[ray_indices]
    out = values.new_full((n_rays, width, *values.shape[1:]), fill)
    out[ray_indices, col] = values
    return out


def grid_cells(x: Tensor, aabb: Tensor, resolution: int, contract: bool = False) -> tuple[Tensor, Tensor]:
    """Flat index of the grid cell holding each point, and whether the point is inside the grid: the box, or all
    of space when ``contract`` (:mod:`spiknerf.nerf.contraction`)."""
    if contract:
        u = to_unit(x, aabb)
    else:
        lo, hi = aabb[:3], aabb[3:]
        u = (x - lo) / (hi - lo)
    inside = ((u >= 0) & (u < 1)).all(-1)
    ijk = (u * resolution).long().clamp(0, resolution - 1)
    return (ijk[..., 0] * resolution + ijk[..., 1]) * resolution + ijk[..., 2], inside


def march(origins: Tensor, dirs: Tensor, t0: Tensor, t1: Tensor, jitter: Tensor, binary: Tensor, aabb: Tensor,
          step: float, resolution: int, width: int) -> tuple[Tensor, Tensor]:
    """Sample starts ``[R, width]`` every ``step`` from ``t0 + jitter * step``, and which of them lie in
    occupied cells before ``t1``."""
    t_starts = t0[:, None] + (torch.arange(width, device=origins.device) + jitter) * step
    mid = t_starts + 0.5 * step
    pts = origins[:, None, :] + dirs[:, None, :] * mid[..., None]
    cells, inside = grid_cells(pts, aabb, resolution)
    return t_starts, binary[cells] & inside & (mid < t1[:, None])


_march_kernel = CpuCompiled(march)


def unbounded_starts(near: Tensor, t_in: Tensor, t_out: Tensor, far: float, step: float, far_steps: int,
                     width: int) -> Tensor:
    """Slot boundaries ``[R, width + 1]`` along rays of an unbounded scene: at most ``far_steps`` even steps from
    ``near`` to the box (``t_in``; none when the ray starts inside it), steps of ``step`` through it (to
    ``t_out``), then ``far_steps`` steps even in disparity (1/t) out to ``far``; padded with ``far``.

    Steps even in disparity grow as t², as the footprint of the contracted cells
    does: however far the background, a ray crosses it in ``far_steps`` samples.
    """
    k = torch.arange(width + 1, device=near.device, dtype=near.dtype)[None, :]
    n_pre = torch.where(t_in > near, torch.ceil((t_in - near) / step).clamp(max=far_steps), torch.zeros_like(near))
    pre_step = torch.where(n_pre > 0, (t_in - near) / n_pre.clamp_min(1), torch.zeros_like(near))
    n_in = torch.ceil((t_out - t_in).clamp_min(0) / step)
    t_far = t_in + n_in * step  # where the box's last step ends
    far_t = torch.as_tensor(far, dtype=near.dtype)
    s_step = (1 / t_far - 1 / far_t).clamp_min(0) / far_steps
    j = (k - n_pre[:, None] - n_in[:, None]).clamp_min(0)
    t = torch.where(k < n_pre[:, None], near[:, None] + k * pre_step[:, None],
                    torch.where(k < (n_pre + n_in)[:, None], t_in[:, None] + (k - n_pre[:, None]) * step,
                                1 / (1 / t_far[:, None] - j * s_step[:, None]).clamp_min(1 / far_t)))
    return t.clamp(max=far)


def march_unbounded(origins: Tensor, dirs: Tensor, near: Tensor, t_in: Tensor, t_out: Tensor, jitter: Tensor,
                    binary: Tensor, aabb: Tensor, far: float, step: float, far_steps: int, resolution: int,
                    width: int) -> tuple[Tensor, Tensor, Tensor]:
    """Sample starts and ends ``[R, width]`` of :func:`unbounded_starts`, each shifted by ``jitter`` of its slot,
    and which of them lie in occupied cells of the grid over contracted space."""
    edges = unbounded_starts(near, t_in, t_out, far, step, far_steps, width)
    size = edges[:, 1:] - edges[:, :-1]
    t_starts = edges[:, :-1] + jitter * size
    t_ends = t_starts + size
    mid = t_starts + 0.5 * size
    pts = origins[:, None, :] + dirs[:, None, :] * mid[..., None]
    cells, _ = grid_cells(pts, aabb, resolution, contract=True)
    return t_starts, t_ends, binary[cells] & (size > 0)


_march_unbounded_kernel = CpuCompiled(march_unbounded)


class OccupancyGridSampler(nn.Module):
    """Occupancy-grid ray marcher in pure torch (see the module docstring)."""

    def __init__(
        self,
        aabb: Tensor,
        near: float,
        far: float,
        step_size: float,
        resolution: int = 64,
        early_stop_eps: float = 1e-4,
        alpha_thre: float = 0.0,
        occ_thre: float = 0.01,
        ema_decay: float = 0.95,
        update_every: int = 16,
        warmup_steps: int = 256,
        refresh_fraction: float = 1 / 16,
        contract: bool = False,
        far_steps: int = 64,
    ) -> None:
        super().__init__()
        self.register_buffer("aabb", torch.as_tensor(aabb, dtype=torch.float32).reshape(6).clone())
        self.near, self.far, self.step_size = float(near), float(far), float(step_size)
        self.contract, self.far_steps = contract, int(far_steps)
        self.resolution = int(resolution)
        self.early_stop_eps, self.alpha_thre, self.occ_thre = early_stop_eps, alpha_thre, occ_thre
        self.ema_decay, self.update_every, self.warmup_steps = ema_decay, update_every, warmup_steps
        self.refresh_fraction = refresh_fraction
        n = self.resolution**3
        self.register_buffer("occupancy", torch.zeros(n))
        self.register_buffer("binary", torch.ones(n, dtype=torch.bool))

    @property
    def occupied_fraction(self) -> float:
        return float(self.binary.float().mean())

    @torch.no_grad()
    def sample(
        self, origins: Tensor, dirs: Tensor, sigma_fn: SigmaFn | None = None, stratified: bool = False,
        jitter: Tensor | None = None, shade_fn: ShadeFn | None = None,
    ) -> RaySamples:
        """Packed samples of the rays; with ``shade_fn`` (which then stands for ``sigma_fn``) also what it gives
        at them (``sigmas``, ``values``), evaluated at the points :meth:`RaySamples.points` gives. ``jitter``: each
        ray's offset ``[R, 1]`` into its first step, drawn here when not given (stratified marching; no offset
        otherwise)."""
        n_rays = origins.shape[0]
        if jitter is None:
            jitter = (torch.rand if stratified else torch.zeros)(n_rays, 1, device=origins.device)
        marched = self.march(origins, dirs, jitter)
        if marched is None:
            empty = origins.new_zeros(0)
            return RaySamples(empty.long(), empty, empty, n_rays)
        t_starts, t_ends, occupied = marched
        # in the box every step is step_size long: multiplying by it (not by t_ends - t_starts, which rounds
        # differently) keeps bounded scenes' densities exactly as they were
        widths = (t_ends - t_starts).to(origins.dtype) if self.contract else self.step_size
        rays, cols = occupied.nonzero(as_tuple=True)
        shaded = None
        if (sigma_fn is not None or shade_fn is not None) and len(rays):
            rank = occupied.cumsum(1)[rays, cols] - 1  # k-th occupied sample of its ray
            shade = {} if shade_fn is None else {"shade": (shade_fn, t_ends)}
            sigma, shaded = self.front_to_back_density(sigma_fn, origins, dirs, t_starts, widths, rays, cols, rank,
                                                       **shade)
            sdt = sigma * widths
            trans = torch.exp(-(torch.cumsum(sdt, dim=1) - sdt))  # transmittance before each sample
            alpha = 1.0 - torch.exp(-sdt)
            live = (trans[rays, cols] > self.early_stop_eps) & (alpha[rays, cols] > self.alpha_thre)
            shaded = None if shaded is None else (shaded[0][live], shaded[1][live])
            rays, cols = rays[live], cols[live]
        return RaySamples(rays, t_starts[rays, cols], t_ends[rays, cols], n_rays, *(shaded or (None, None)))

    def march(self, origins: Tensor, dirs: Tensor, jitter: Tensor) -> tuple[Tensor, Tensor, Tensor] | None:
        """Sample starts and ends ``[R, width]`` along the rays and which lie in occupied cells; None when no ray
        meets the grid."""
        t0, t1 = ray_aabb(origins, dirs, self.aabb)
        if self.contract:  # the grid covers all of space: march from near, through the box, on to far
            near = torch.full_like(t0, self.near)
            t_in = torch.minimum(t0.clamp_min(self.near), t1.clamp_min(self.near))
            t_out = t1.clamp(min=self.near, max=self.far)
            n_pre = torch.ceil((t_in - near) / self.step_size).clamp(max=self.far_steps)
            width = int((n_pre + torch.ceil((t_out - t_in).clamp_min(0) / self.step_size)).max()) + self.far_steps
            return _march_unbounded_kernel(origins, dirs, near, t_in, t_out, jitter, self.binary, self.aabb, self.far,
                                           self.step_size, self.far_steps, self.resolution, width)
        t0, t1 = t0.clamp_min(self.near), t1.clamp_max(self.far)
        hit = t1 > t0
        if not bool(hit.any()):
            return None
        width = int(torch.ceil((t1 - t0)[hit].max() / self.step_size))
        t_starts, occupied = _march_kernel(origins, dirs, t0, t1, jitter, self.binary, self.aabb, self.step_size,
                                           self.resolution, width)
        return t_starts, t_starts + self.step_size, occupied

    def front_to_back_density(self, sigma_fn: SigmaFn | None, origins: Tensor, dirs: Tensor, t_starts: Tensor,
                              widths: Tensor | float, rays: Tensor, cols: Tensor, rank: Tensor, first: int = 16,
                              shade: tuple[ShadeFn, Tensor] | None = None,
                              ) -> tuple[Tensor, tuple[Tensor, Tensor] | None]:
        """Density ``[R, width]`` at the occupied samples, evaluated in rounds front to back.

        Each round takes the next occupied samples of every ray (16, then 32, 64, ...)
        and rays whose transmittance is already spent are left out of later rounds:
        their remaining samples would be dropped anyway, so the result equals one pass
        over all samples while an opaque scene's density is read near its surfaces only.

        ``shade`` (a :data:`ShadeFn` and the samples' ends ``[R, width]``) evaluates it
        instead, at the mid-points compositing uses, and returns what it gave, in the
        rays' dtype, as well (else None): the density ``[S]`` and the values ``[S, k]``
        of the occupied samples ``rays, cols`` (zero where a spent ray left them out).
        A colour computed in a round for a sample that the transmittance then drops is
        wasted, a second reading of the encoding at every kept sample is saved.
        """
        sigma = torch.zeros(t_starts.shape, device=origins.device)
        shaded = None
        depth = torch.zeros(t_starts.shape[0], device=origins.device)
        # spent means exp(-depth) <= early_stop_eps; the margin keeps float rounding on the safe side
        spent = -math.log(self.early_stop_eps) * (1 + 1e-4)
        lo, size, last = 0, first, int(rank.max())
        while lo <= last:
            pick = (rank >= lo) & (rank < lo + size)
            pick &= depth[rays] < spent
            r, c = rays[pick], cols[pick]
            if len(r) == 0:
                break
            w = widths if isinstance(widths, float) else widths[r, c]
            if shade is None:
                mid = t_starts[r, c] + 0.5 * w
                s = sigma_fn(origins[r] + dirs[r] * mid[:, None]).float()
            else:  # RaySamples.points' arithmetic, so that these are the very points compositing would evaluate
                mid = (t_starts[r, c] + shade[1][r, c])[:, None] * 0.5
                field_sigma, field_values = shade[0](origins[r] + dirs[r] * mid, r)
                if shaded is None:
                    shaded = origins.new_zeros(len(rays)), origins.new_zeros(len(rays), *field_values.shape[1:])
                shaded[0][pick], shaded[1][pick] = field_sigma.to(origins.dtype), field_values.to(origins.dtype)
                s = field_sigma.float()
            sigma[r, c] = s
            depth.index_add_(0, r, (s * w).float())
            lo, size = lo + size, size * 2
        return sigma, shaded

    def cell_points(self, u: Tensor) -> Tensor:
        """World points of grid coordinates ``u [..., 3]`` in the unit cube."""
        if self.contract:
            return from_unit(u, self.aabb)
        lo, hi = self.aabb[:3], self.aabb[3:]
        return lo + u * (hi - lo)

    def cell_step(self, u: Tensor) -> Tensor:
        """The length of a ray's step at grid coordinates ``u [N, 3]``: ``step_size`` in the box; beyond it, in
        contracted space, a step as long as the cells there are (they grow as the square of the distance)."""
        if not self.contract:
            return torch.full(u.shape[:1], self.step_size, device=u.device)
        m = ((u - 0.5) * 4).abs().amax(-1).clamp(1.0, 2.0 - 1e-4)  # contracted L∞ radius, the box at 1
        return self.step_size / (2.0 - m) ** 2

    @torch.no_grad()
    def update(self, step: int, density_fn: SigmaFn, generator: torch.Generator | None = None) -> bool:
        """Refresh the grid from the field's density every ``update_every`` steps; True if it ran.

        During warm-up every cell is refreshed; afterwards a random ``refresh_fraction``
        of all cells plus as many occupied ones, because refreshing the whole grid
        would cost more than the training steps once the field is pruned.
        """
        if step % self.update_every:
            return False
        n = self.occupancy.numel()
        dev = self.occupancy.device
        if step < self.warmup_steps:
            cells = torch.arange(n, device=dev)
        else:
            k = max(1, int(n * self.refresh_fraction))
            # drawn on the CPU, where the training generator lives, and moved: a CPU generator cannot draw on CUDA
            uniform = torch.randint(0, n, (k,), generator=generator).to(dev)
            occ = self.binary.nonzero().squeeze(1)
            pick = occ[torch.randint(0, len(occ), (min(k, len(occ)),), generator=generator).to(dev)]
            cells = torch.cat([uniform, pick])
        r = self.resolution
        ijk = torch.stack([cells // (r * r), (cells // r) % r, cells % r], -1).float()
        jitter = torch.rand(ijk.shape, generator=generator).to(dev)
        u = (ijk + jitter) / r
        value = torch.cat([density_fn(chunk).float() for chunk in self.cell_points(u).split(1 << 16)])
        value = value * self.cell_step(u)
        self.occupancy *= self.ema_decay
        # cells repeat after warm-up; an indexed write would keep whichever repeat's thread wrote last, which
        # made two runs with the same seed drift apart, where a max over the repeats is the same in any order
        self.occupancy.scatter_reduce_(0, cells, value, reduce="amax")
        thre = min(self.occ_thre, float(self.occupancy.double().mean()))
        self.binary = self.occupancy > thre
        if not bool(self.binary.any()):  # a uniform young field says nothing yet: keep every cell
            self.binary.fill_(True)
        return True


class NerfaccOccupancySampler(nn.Module):
    """The same occupancy-grid sampler on nerfacc's CUDA ``OccGridEstimator``."""

    def __init__(self, aabb: Tensor, near: float, far: float, step_size: float, resolution: int = 64,
                 early_stop_eps: float = 1e-4, alpha_thre: float = 0.0, occ_thre: float = 0.01,
                 ema_decay: float = 0.95, update_every: int = 16, warmup_steps: int = 256, **_: object) -> None:
        super().__init__()
        import nerfacc

        self.estimator = nerfacc.OccGridEstimator(roi_aabb=torch.as_tensor(aabb).reshape(6), resolution=resolution)
        self.near, self.far, self.step_size = float(near), float(far), float(step_size)
        self.early_stop_eps, self.alpha_thre, self.occ_thre = early_stop_eps, alpha_thre, occ_thre
        self.ema_decay, self.update_every, self.warmup_steps = ema_decay, update_every, warmup_steps

    @property
    def occupied_fraction(self) -> float:
        return float(self.estimator.binaries.float().mean())

    @torch.no_grad()
    def sample(self, origins: Tensor, dirs: Tensor, sigma_fn: SigmaFn | None = None,
               stratified: bool = False, jitter: Tensor | None = None) -> RaySamples:
        # nerfacc draws its own offsets (``jitter`` is not used); its kernels take float32 only; a float64
        # field (the fold check) still sees float64 points
        def nerfacc_sigma(t_starts: Tensor, t_ends: Tensor, ray_indices: Tensor) -> Tensor:
            mid = (t_starts + t_ends).to(origins.dtype)[:, None] * 0.5
            return sigma_fn(origins[ray_indices] + dirs[ray_indices] * mid).float()

        ray_indices, t_starts, t_ends = self.estimator.sampling(
            origins.float(), dirs.float(), sigma_fn=nerfacc_sigma if sigma_fn is not None else None,
            near_plane=self.near, far_plane=self.far, render_step_size=self.step_size,
            stratified=stratified, alpha_thre=self.alpha_thre, early_stop_eps=self.early_stop_eps,
        )
        return RaySamples(ray_indices.long(), t_starts.to(origins.dtype), t_ends.to(origins.dtype), origins.shape[0])

    def update(self, step: int, density_fn: SigmaFn, generator: torch.Generator | None = None) -> bool:
        if step % self.update_every:
            return False

        def occupancy(x: Tensor) -> Tensor:
            # float32 even under autocast: in bf16 a young field's near-uniform densities round to one value,
            # and no cell then beats their mean, the threshold
            with torch.autocast(x.device.type, enabled=False):
                return density_fn(x.float()).float() * self.step_size

        self.estimator.update_every_n_steps(
            step=step, occ_eval_fn=occupancy, occ_thre=self.occ_thre,
            ema_decay=self.ema_decay, warmup_steps=self.warmup_steps, n=self.update_every,
        )
        if not bool(self.estimator.binaries.any()):  # a uniform young field says nothing yet: keep every cell
            self.estimator.binaries.fill_(True)
        return True


def sample_pdf(bins: Tensor, weights: Tensor, n: int, deterministic: bool) -> Tensor:
    """Inverse-transform samples ``[R, n]`` from the piecewise-constant pdf ``weights [R, B]`` on ``bins [R, B+1]``."""
    pdf = (weights + 1e-5) / (weights + 1e-5).sum(-1, keepdim=True)
    cdf = torch.cat([torch.zeros_like(pdf[:, :1]), torch.cumsum(pdf, -1)], -1)
    if deterministic:
        u = torch.linspace(0.0, 1.0, n, device=bins.device).expand(bins.shape[0], n).contiguous()
    else:
        u = torch.rand(bins.shape[0], n, device=bins.device)
    idx = torch.searchsorted(cdf, u, right=True).clamp(1, cdf.shape[-1] - 1)
    c_lo, c_hi = cdf.gather(1, idx - 1), cdf.gather(1, idx)
    b_lo, b_hi = bins.gather(1, idx - 1), bins.gather(1, idx)
    frac = (u - c_lo) / (c_hi - c_lo).clamp_min(1e-5)
    return b_lo + frac * (b_hi - b_lo)


class CoarseToFineSampler(nn.Module):
    """NeRF's hierarchical sampling: ``n_coarse`` stratified samples, then ``n_fine`` from their weights.

    ``sample`` needs ``sigma_fn`` (density evaluated without gradient) and returns
    the union of both sets, sorted along each ray. One field serves both passes
    (as in mip-NeRF) instead of NeRF's separate coarse MLP; the field is then
    trained on all samples of the union.
    """

    def __init__(self, near: float, far: float, n_coarse: int = 64, n_fine: int = 128) -> None:
        super().__init__()
        self.near, self.far, self.n_coarse, self.n_fine = float(near), float(far), n_coarse, n_fine
        # every ray gets all its samples: 4096 rays would hold 786k samples x 256 features per layer (GBs)
        self.render_chunk = max(1, (1 << 16) // (n_coarse + n_fine))

    @property
    def occupied_fraction(self) -> float:
        return 1.0

    def coarse(self, origins: Tensor, stratified: bool) -> Tensor:
        """Coarse bin edges ``[R, n_coarse + 1]``."""
        n_rays = origins.shape[0]
        edges = torch.linspace(self.near, self.far, self.n_coarse + 1, device=origins.device)
        edges = edges.expand(n_rays, -1).clone()
        if stratified:
            width = (self.far - self.near) / self.n_coarse
            edges[:, :-1] += torch.rand(n_rays, self.n_coarse, device=origins.device) * width
            edges[:, 1:-1] = torch.minimum(edges[:, 1:-1], edges[:, 2:])  # keep the edges sorted
        return edges

    @torch.no_grad()
    def sample(self, origins: Tensor, dirs: Tensor, sigma_fn: SigmaFn | None = None,
               stratified: bool = False, jitter: Tensor | None = None) -> RaySamples:
        """``jitter`` is not used: the coarse samples are stratified by draws of their own."""
        if sigma_fn is None:
            raise ValueError("sigma_fn is required: the fine samples follow the coarse weights")
        edges = self.coarse(origins, stratified)
        mid = 0.5 * (edges[:, :-1] + edges[:, 1:])
        pts = origins[:, None] + dirs[:, None] * mid[..., None]
        sigma = sigma_fn(pts.reshape(-1, 3)).reshape(mid.shape).float()
        sdt = sigma * (edges[:, 1:] - edges[:, :-1])
        weights = torch.exp(-(torch.cumsum(sdt, 1) - sdt)) * (1 - torch.exp(-sdt))
        fine = sample_pdf(edges, weights, self.n_fine, deterministic=not stratified)
        t = torch.sort(torch.cat([edges, fine], -1), -1).values
        n_rays, width = t.shape[0], t.shape[1] - 1
        rays = torch.arange(n_rays, device=origins.device).repeat_interleave(width)
        return RaySamples(rays, t[:, :-1].reshape(-1), t[:, 1:].reshape(-1), n_rays)

    def update(self, step: int, density_fn: SigmaFn, generator: torch.Generator | None = None) -> bool:
        return False


def default_step_size(aabb: Tensor, image_width: int) -> float:
    """A march step a little finer than a pixel's footprint: box diagonal / clamp(2.56 W, 256, 1024)."""
    diag = float(torch.linalg.norm(torch.as_tensor(aabb)[3:] - torch.as_tensor(aabb)[:3]))
    return diag / min(max(2.56 * image_width, 256.0), 1024.0)

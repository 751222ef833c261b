"""Render a test view of a run's spiking student beside its spike-count map, for the README.

    python scripts/make_readme_figure.py --run runs/shapes-... [--view 0] [--scale 2]
                                         [--weighting sum|rendering] [--out docs/images/readme-spike-map.png]

Left: the student's rendering of test view ``--view``; right: the spikes its
neurons emit along each pixel's ray (:func:`spiknerf.nerf.spike_map.spike_map`),
dark for none, bright for the most in the view. Both are enlarged ``--scale``
times (nearest neighbour) and written side by side as one PNG, atomically.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import imageio.v3 as iio
import torch

from spiknerf.atomic import write_atomic
from spiknerf.errors import InputError
from spiknerf.nerf.render import render_chunks
from spiknerf.nerf.run import eval_background, load_model, open_scene, read_config
from spiknerf.nerf.spike_map import colorize, spike_map
from spiknerf.paths import DOCS

GAP = 8  # white pixels between the two images


def figure(run: Path, view: int, scale: int, weighting: str) -> torch.Tensor:
    """The two images side by side, ``[H, 2 W + GAP, 3]`` uint8."""
    config = read_config(run)
    scene = open_scene(run, config)
    model, sampler, _ = load_model(run, "student", config, scene, torch.device("cpu"))
    split = scene.splits["test"]
    if not 0 <= view < len(split):
        raise InputError(f"--view {view}: the test split has {len(split)} views")
    o, d, vd = split.view_rays(view)
    background = eval_background(scene)
    rgb = render_chunks(model, sampler, o, d, background, vd).rgb.reshape(split.height, split.width, 3)
    counts = spike_map(model, sampler, o, d, background, vd, weighting=weighting)
    spikes = colorize(counts.reshape(split.height, split.width))
    gap = torch.ones(split.height, GAP // scale or 1, 3)
    both = torch.cat([rgb.clamp(0, 1), gap, spikes], dim=1)
    both = both.repeat_interleave(scale, 0).repeat_interleave(scale, 1)
    return (both * 255).round().to(torch.uint8)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a run directory with a trained student")
    parser.add_argument("--view", type=int, default=0, help="test view to render")
    parser.add_argument("--scale", type=int, default=2, help="enlarge each image this many times")
    parser.add_argument("--weighting", choices=("sum", "rendering"), default="sum")
    parser.add_argument("--out", type=Path, default=DOCS / "images" / "readme-spike-map.png")
    args = parser.parse_args(argv)
    torch.set_grad_enabled(False)
    try:
        image = figure(args.run, args.view, max(args.scale, 1), args.weighting)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    write_atomic(args.out, lambda tmp: iio.imwrite(tmp, image.numpy()))
    print(f"wrote {args.out} ({image.shape[1]} x {image.shape[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

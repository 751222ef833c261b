"""Render a capture with known cameras: the built-in shapes, finely textured, optionally inside a textured sphere.

The folder holds ``images/`` (photos for ``spiknerf process``) and ``transforms.json`` with the true cameras
(a scene ``spiknerf train`` reads as it is). ``--background`` encloses the shapes in a textured sphere: an
all-around scene with a background, unbounded in NeRF terms (for the scene-contraction work)::

    python scripts/make_capture.py --out shapes-room --background
    spiknerf process --images shapes-room/images --out shapes-room-posed   # estimated cameras
    spiknerf train --data shapes-room                                        # true cameras
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, dataclass, field

from spiknerf.capture.textured import CELL, write_capture
from spiknerf.cli import add_dataclass_options
from spiknerf.errors import InputError


@dataclass(frozen=True)
class MakeCaptureConfig:
    """Render a capture with known cameras (images/ and transforms.json)."""

    out: str = field(default="shapes-capture", metadata={"help": "new folder to write the capture into"})
    views: int = field(default=48, metadata={"help": "photos, one turn of a rising spiral around the shapes"})
    width: int = 400
    height: int = 300
    supersample: int = field(default=2, metadata={"help": "rays a pixel side"})
    background: bool = field(default=False, metadata={"help": "enclose the shapes in a textured sphere"})
    seed: int = field(default=0, metadata={"help": "seed of the cameras' jitter"})
    arc_deg: float = field(default=360.0, metadata={"help": "degrees of the turn the cameras cover"})
    cell: float = field(default=CELL, metadata={"help": "side of a texture cell (larger for small images)"})


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=MakeCaptureConfig.__doc__)
    add_dataclass_options(parser, MakeCaptureConfig)
    cfg = MakeCaptureConfig(**vars(parser.parse_args(argv)))
    try:
        path = write_capture(**asdict(cfg))
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path}: {cfg.views} views, {cfg.width} x {cfg.height}")
    return 0


if __name__ == "__main__":
    sys.exit(run())

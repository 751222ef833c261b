"""Render a variant of the built-in scene (size, number of views, camera seed) in the Blender format.

    python scripts/make_scene.py --out my-shapes --size 256 --views 200 --test-views 40 --seed 1
    spiknerf train --data my-shapes
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field, fields

from spiknerf.cli import add_dataclass_options
from spiknerf.errors import InputError
from spiknerf.nerf.data.builtin import SceneSpec, write_scene


@dataclass(frozen=True)
class MakeSceneConfig(SceneSpec):
    """Render a variant of the built-in scene (Blender format)."""

    out: str = field(default="shapes-scene", metadata={"help": "new folder to write the scene into"})


def main(cfg: MakeSceneConfig) -> int:
    spec = SceneSpec(**{f.name: getattr(cfg, f.name) for f in fields(SceneSpec)})
    path = write_scene(cfg.out, spec)
    print(f"wrote {path}: {spec.views} train and {spec.test_views} test views, {spec.size} x {spec.size} RGBA")
    return 0


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=MakeSceneConfig.__doc__)
    add_dataclass_options(parser, MakeSceneConfig)
    cfg = MakeSceneConfig(**vars(parser.parse_args(argv)))
    try:
        return main(cfg)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(run())

"""Load a scene from disk: detect its format from the folder's contents, read it, then frame it
(:mod:`spiknerf.nerf.data.framing`: forward-facing, object or unbounded)."""

from __future__ import annotations

from pathlib import Path

from spiknerf.errors import InputError
from spiknerf.limits import Budget
from spiknerf.nerf.data import blender, llff, ngp, npz
from spiknerf.nerf.data.cache import user_cache_dir
from spiknerf.nerf.data.confine import SceneFolder, shown
from spiknerf.nerf.data.framing import KIND_CHOICES, Hints, frame_scene
from spiknerf.nerf.data.scene import BACKGROUNDS, Scene

LOADERS = {
    "blender": blender.load_blender,
    "ngp": ngp.load_ngp,
    "llff": llff.load_llff,
    "npz": npz.load_npz,
}
FORMATS: tuple[str, ...] = tuple(LOADERS)
# formats of synthetic scenes, whose loaders set the box: objects, whatever their cameras look like
SYNTHETIC_FORMATS: tuple[str, ...] = ("blender", "npz")


def detect_format(path: Path) -> tuple[str, Path]:
    """(format, what to load): a ``.npz`` file, or a folder recognised by its files.

    Checked in order: ``transforms_<split>.json`` (Blender), ``transforms.json``
    (instant-ngp / nerfstudio), ``poses_bounds.npy`` (LLFF), a single ``.npz``.
    A folder's files must stay inside it (:mod:`spiknerf.nerf.data.confine`).
    """
    if not path.exists():
        raise InputError(f"scene {path} does not exist")
    if path.is_file():
        if path.suffix == ".npz":
            return "npz", path
        raise InputError(f"scene {path} is a file but not a .npz; pass a scene folder or a tiny-NeRF .npz")
    scene = SceneFolder(path)
    if blender.is_blender(path):
        return "blender", path
    if scene.existing_file(ngp.FILENAME, "scene file"):
        return "ngp", path
    if scene.existing_file(llff.FILENAME, "scene file"):
        return "llff", path
    archives = [p for p in sorted(path.glob("*.npz")) if scene.existing_file(p.name, "scene file")]
    if len(archives) == 1:
        return "npz", archives[0]
    if len(archives) > 1:
        names = ", ".join(p.name for p in archives)
        raise InputError(f"scene {path} holds several .npz files ({names}); pass one of them")
    raise InputError(
        f"scene {path}: no recognisable format (expected transforms_train.json for Blender, "
        "transforms.json for instant-ngp / nerfstudio, poses_bounds.npy for LLFF, or a tiny-NeRF .npz)"
    )


def load_scene(
    path: str | Path,
    downscale: int = 1,
    background: str = "white",
    cache_dir: str | Path | None = None,
    scene_kind: str = "auto",
) -> Scene:
    """Read a scene, with images shrunk ``downscale`` times, framed as ``scene_kind`` (``auto``: as the scene
    declares, else as its cameras say); raises InputError on any bad input.

    Downscaled images are cached under ``cache_dir`` (the user cache dir when
    None), never beside the data. Sizes are checked against
    :mod:`spiknerf.limits` before anything is decoded.
    """
    if isinstance(downscale, bool) or not isinstance(downscale, int) or downscale < 1:
        raise InputError(f"--downscale must be an integer >= 1 (got {downscale!r})")
    if background not in BACKGROUNDS:
        raise InputError(f"background must be one of {', '.join(BACKGROUNDS)} (got {background!r})")
    if scene_kind not in KIND_CHOICES:
        raise InputError(f"--scene-kind must be one of {', '.join(KIND_CHOICES)} (got {scene_kind!r})")
    try:
        fmt, target = detect_format(Path(path).expanduser())
        cache = Path(cache_dir) if cache_dir is not None else user_cache_dir()
        # one budget for the whole scene: every split's images and the arrays read with them
        scene = LOADERS[fmt](target, downscale, cache, background, Budget())
    except OSError as exc:  # what no reader anticipated (a folder without permission, a full disk for the cache)
        raise InputError(f"scene {path}: {exc.strerror or exc} ({shown(exc.filename)})") from None
    if fmt in SYNTHETIC_FORMATS and scene.hints is None:
        scene.hints = Hints(kind="object", aabb=scene.aabb.double().numpy(), alpha=True,
                            near_far=(scene.near, scene.far))
    return frame_scene(scene, scene_kind)

"""Where the built-in scene lives: the user cache dir, rendered there on first use."""

from __future__ import annotations

import sys
from pathlib import Path

from spiknerf.errors import InputError
from spiknerf.nerf.data.cache import user_cache_dir


def default_scene_path() -> Path:
    """The built-in scene's folder (Blender format), rendered on first use."""
    # Imported here: the renderer uses this package's image helpers, so a
    # module-level import would be circular.
    from spiknerf.nerf.synthetic import SCENE_NAME, SCENE_VERSION, write_scene

    path = user_cache_dir() / "scenes" / f"{SCENE_NAME}-v{SCENE_VERSION}"
    if not path.is_dir():
        print(f"rendering the built-in scene into {path} (first use only)", file=sys.stderr)
        try:
            write_scene(path)
        except (InputError, OSError):
            if not path.is_dir():  # another process may have finished it first
                raise
    return path

"""Scenes on disk: format detection, loaders (Blender, instant-ngp / nerfstudio, LLFF, tiny-NeRF .npz), validation.

``load_scene(path, downscale, background, cache_dir)`` returns a :class:`Scene` whose
:class:`Split` s hold uint8 images, camera-to-world poses and intrinsics and turn
pixels into rays; ``default_scene_path()`` is the built-in scene (rendered on first use).
"""

from spiknerf.nerf.data.builtin import default_scene_path
from spiknerf.nerf.data.load import FORMATS, detect_format, load_scene
from spiknerf.nerf.data.scene import BACKGROUNDS, Scene, Split

__all__ = ["BACKGROUNDS", "FORMATS", "Scene", "Split", "default_scene_path", "detect_format", "load_scene"]

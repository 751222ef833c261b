"""Own captures: photos or a phone video in, a posed scene folder out (camera poses by pycolmap).

``spiknerf process`` runs the stages in order, one module each:

* :mod:`~spiknerf.capture.photos`: a folder of photos, checked and copied as working images;
* :mod:`~spiknerf.capture.video`: evenly spaced, sharp frames of a video;
* :mod:`~spiknerf.capture.sfm`: features, matching and incremental mapping with pycolmap;
* :mod:`~spiknerf.capture.normalize`: the reconstruction as OpenGL cameras in a normalized frame, its box and kind;
* :mod:`~spiknerf.capture.scene_folder`: posed images, their lens and ``transforms.json``;
* :mod:`~spiknerf.capture.process`: the command.

:mod:`~spiknerf.capture.accuracy` compares estimated cameras with known ones, and
:mod:`~spiknerf.capture.textured` renders captures whose cameras are known (tests, benchmark).
This package builds on :mod:`spiknerf.nerf`; nothing there imports it.
"""

"""Own captures: photos or a phone video in, a posed scene folder out (camera poses by pycolmap).

``spiknerf process`` runs the stages in order, one module each:

* :mod:`~spiknerf.capture.photos`: a folder of photos, checked and copied as working images;
* :mod:`~spiknerf.capture.video`: evenly spaced, sharp frames of a video;
* :mod:`~spiknerf.capture.sfm`: features, matching and incremental mapping with pycolmap;
* :mod:`~spiknerf.capture.framing`: the reconstruction turned into OpenGL cameras in a normalized frame;
* :mod:`~spiknerf.capture.scene_folder`: undistorted images and ``transforms.json``;
* :mod:`~spiknerf.capture.process`: the command.

:mod:`~spiknerf.capture.accuracy` compares estimated cameras with known ones (the benchmark).
This package builds on :mod:`spiknerf.nerf`; nothing there imports it.
"""

"""The local web viewer (viser and nerfview): a run's models live in a browser, where they spike, and camera paths.

``spiknerf view --run RUN`` (:mod:`spiknerf.viewer.view`) and ``spiknerf train
--viewer`` (:mod:`spiknerf.viewer.training`) serve it; :mod:`~spiknerf.viewer.app`
holds the server and its panels, :mod:`~spiknerf.viewer.frame` renders one frame
and what it cost, :mod:`~spiknerf.viewer.models` the models shown,
:mod:`~spiknerf.viewer.keyframes` the camera paths and :mod:`~spiknerf.viewer.gate`
the turns renders take with training steps. Built on :mod:`spiknerf.nerf`, which
imports it only when ``train --viewer`` asks for it (the viewer extra may be absent).
"""

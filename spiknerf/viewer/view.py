"""``spiknerf view``: look at a run's models in a web browser, live, and see where the student spikes.

The run folder is only read (no lock is taken: a run may go on training while
it is viewed; the viewer shows the checkpoints it found when it started).
Camera paths saved in the viewer go to ``--paths``, never into the run.
"""

from __future__ import annotations

import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from spiknerf.errors import InputError
from spiknerf.nerf.run import choose_device


@dataclass
class ViewConfig:
    """Serve a web viewer of a run's models on this machine."""

    run: str = field(metadata={"help": "run directory (only read)"})
    host: str = field(default="127.0.0.1", metadata={
        "help": "address to listen on; 0.0.0.0 lets every machine that reaches this one see the model"})
    port: int = field(default=8080, metadata={"help": "port to listen on (taken: the next free one; 0: any)"})
    paths: str = field(default="camera_paths", metadata={"help": "folder for the camera paths saved in the viewer"})
    device: str = field(default="auto", metadata={"choices": ("auto", "cpu", "cuda")})


def check_address(host: str, port: int) -> None:
    """``host`` names an address of this machine's resolver and ``port`` is a port number."""
    if not 0 <= port <= 65535:
        raise InputError(f"--port must be in 0..65535 (got {port})")
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise InputError(f"--host {host!r:.80}: not an address to listen on ({exc})") from None


def check_paths_folder(paths: Path, run: Path) -> None:
    """Camera paths never go into a run folder (its files are its writer's)."""
    if paths.resolve().is_relative_to(Path(run).resolve()):
        raise InputError(f"--paths {paths} is inside the run folder {run}; the viewer never writes into a run")


def url(host: str, port: int) -> str:
    """The address a browser on this machine opens."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def viewer_modules():
    """The viewer's modules, which need the ``viewer`` extra (viser, nerfview)."""
    try:
        from spiknerf.viewer import app, models
    except ImportError as exc:
        raise InputError(f"the viewer needs viser and nerfview ({exc.name} is missing): "
                         "pip install 'spiknerf[viewer]'") from None
    return app, models


def main(cfg: ViewConfig) -> int:
    run, paths = Path(cfg.run), Path(cfg.paths)
    check_address(cfg.host, cfg.port)
    check_paths_folder(paths, run)
    app, models = viewer_modules()
    shown = models.open_run(run, choose_device(cfg.device))
    server, viewer = app.start_server(cfg.host, cfg.port), None
    try:
        viewer = app.SpikingViewer(server, shown, paths, run=run)
        print(f"viewer: {url(cfg.host, server.get_port())}  ({shown.status}; Ctrl-C stops it)", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("viewer stopped", file=sys.stderr)
    finally:
        app.stop_server(server, viewer)
    return 0

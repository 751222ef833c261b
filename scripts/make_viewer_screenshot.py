"""The viewer as a browser shows it, for the docs: headless Chromium opens ``spiknerf view``'s page.

    python scripts/make_viewer_screenshot.py --run runs/viewer-lego --show spikes --out docs/images/viewer-spikes.png

Serves the run as ``spiknerf view`` does, opens the page in headless Chromium,
picks the model and output by clicking their buttons, waits until the page has
shown a full-resolution frame for a few seconds, and saves a screenshot.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

from spiknerf.viewer import app, models
from spiknerf.viewer.browser import Browser, find_chromium
from spiknerf.viewer.frame import OUTPUTS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--model", choices=models.PHASES, default="student")
    parser.add_argument("--show", choices=OUTPUTS, default="spikes")
    parser.add_argument("--size", type=int, nargs=2, default=(1100, 620), help="the page's width and height")
    parser.add_argument("--resolution", type=int, help="full resolution of a still frame (default: the run's)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    chromium = find_chromium()
    if chromium is None:
        raise SystemExit("headless Chromium is not installed (apt-get install chromium)")
    shown = models.open_run(args.run, torch.device("cpu"))
    server = app.start_server("127.0.0.1", 0)
    viewer = app.SpikingViewer(server, shown, Path(tempfile.mkdtemp()), run=args.run)
    if args.resolution:
        viewer.set_resolution(args.resolution)
    try:
        with Browser(chromium, *args.size, timeout=300) as browser:
            browser.open(f"http://127.0.0.1:{server.get_port()}")
            while not viewer.has_clients or viewer.frames_rendered == 0:
                time.sleep(0.5)
            time.sleep(2)
            browser.click(args.model)
            browser.click(args.show)
            while viewer.last_frame is None or viewer.last_frame[2].output != args.show or \
                    max(viewer.last_frame[2].width, viewer.last_frame[2].height) != viewer.render_tab_state.viewer_res:
                time.sleep(0.5)
            browser.dismiss_notices()
            time.sleep(5)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(browser.screenshot()).save(args.out)
    finally:
        app.stop_server(server, viewer)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

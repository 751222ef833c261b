"""A headless Chromium that opens the viewer as a person would: for the tests, and the screenshot in docs/.

Chromium is driven through the Chrome DevTools Protocol over a websocket
(``websockets``, which viser already needs): navigate, run a line of
JavaScript (a click on a panel's button), take a screenshot. WebGL runs in
software (SwiftShader), so no GPU is needed. Chromium is the Debian package
``chromium`` (:func:`find_chromium`); nothing is downloaded.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from websockets.sync.client import connect

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless=new", "--no-sandbox", "--no-first-run", "--no-default-browser-check", "--mute-audio",
         "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist",
         "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
         "--disable-backgrounding-occluded-windows", "--remote-allow-origins=*", "--remote-debugging-port=0")


def find_chromium() -> str | None:
    """The path of an installed Chromium (or Chrome), else ``None``."""
    return next((path for name in NAMES if (path := shutil.which(name))), None)


class Browser:
    """One headless Chromium with one page, ``width x height`` CSS pixels; use it as a context manager."""

    def __init__(self, executable: str, width: int = 960, height: int = 640, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self._profile = tempfile.TemporaryDirectory(prefix="spiknerf-chromium-")
        self._process = subprocess.Popen(
            [executable, *FLAGS, f"--user-data-dir={self._profile.name}", f"--window-size={width},{height}",
             "about:blank"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._ids = itertools.count(1)
        try:
            port = self._devtools_port()
            page = self._wait(lambda: next((t for t in self._targets(port) if t.get("type") == "page"), None),
                              "a page target")
            self._socket = connect(page["webSocketDebuggerUrl"], max_size=64 << 20, open_timeout=timeout)
            self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                      mobile=False)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _wait(self, probe, what: str, timeout: float | None = None) -> Any:
        deadline = time.monotonic() + (timeout or self.timeout)
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"chromium exited with code {self._process.returncode}")
            try:
                value = probe()
            except OSError:
                value = None
            if value:
                return value
            time.sleep(0.1)
        raise TimeoutError(f"chromium: no {what} within {timeout or self.timeout:.0f} s")

    def _devtools_port(self) -> int:
        """The port Chromium chose (``--remote-debugging-port=0`` writes it into the profile)."""
        marker = Path(self._profile.name) / "DevToolsActivePort"
        text = self._wait(lambda: marker.is_file() and marker.read_text().strip(), "DevTools port")
        return int(text.splitlines()[0])

    @staticmethod
    def _targets(port: int) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as response:
            return json.loads(response.read())

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """One DevTools command; returns its result (events in between are skipped)."""
        ident = next(self._ids)
        self._socket.send(json.dumps({"id": ident, "method": method, "params": params}))
        deadline = time.monotonic() + self.timeout
        while True:
            message = json.loads(self._socket.recv(timeout=max(deadline - time.monotonic(), 0.01)))
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def open(self, url: str) -> None:
        self.send("Page.navigate", url=url)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"javascript failed: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def click(self, text: str) -> bool:
        """Click the first button whose text is ``text``; whether there was one."""
        return bool(self.evaluate(
            "(() => { const b = [...document.querySelectorAll('button')].find(e => e.textContent.trim() === "
            f"{json.dumps(text)}); if (b) b.click(); return !!b; }})()"))

    def dismiss_notices(self) -> int:
        """Close the page's notifications (viser tells that WebGL runs in software); how many there were."""
        return int(self.evaluate(
            "(() => { const b = [...document.querySelectorAll('[class*=\"Notification\"] button')]; "
            "b.forEach(e => e.click()); return b.length; })()"))

    def screenshot(self) -> np.ndarray:
        """The page as it is shown now, uint8 ``[H, W, 3]``."""
        data = base64.b64decode(self.send("Page.captureScreenshot", format="png")["data"])
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))

    def canvas_box(self) -> tuple[int, int, int, int] | None:
        """(left, top, width, height) of the page's largest canvas in screenshot pixels, if it has one."""
        box = self.evaluate(
            "(() => { const c = [...document.querySelectorAll('canvas')].sort((a, b) => b.width * b.height - "
            "a.width * a.height)[0]; if (!c) return null; const r = c.getBoundingClientRect(); "
            "const s = window.devicePixelRatio; return [r.left * s, r.top * s, r.width * s, r.height * s]; })()")
        return None if box is None else tuple(int(round(v)) for v in box)

    def close(self) -> None:
        socket = getattr(self, "_socket", None)
        if socket is not None:
            socket.close()
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._profile.cleanup()

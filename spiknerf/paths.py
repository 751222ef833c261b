"""Where the checkout's documents and the development data live (one definition for drivers and tests).

``SHARED_DATA`` is the read-only data folder beside the checkout (``../shared/data``), or
``$SPIKNERF_SHARED_DATA``. Nothing in the package needs it: only benchmark drivers,
figure scripts and tests that skip when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
RESULTS_DIR = DOCS / "results"
SHARED_DATA = Path(os.environ.get("SPIKNERF_SHARED_DATA", ROOT.parent / "shared" / "data"))
LEGO = SHARED_DATA / "nerf_synthetic" / "lego"
REAL_SCENES = SHARED_DATA / "real"

"""``python -m spiknerf``: the ``spiknerf`` command, as ``torchrun -m spiknerf train ...`` starts it."""

import sys

from spiknerf.cli import main

sys.exit(main())

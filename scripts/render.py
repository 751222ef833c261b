"""`python scripts/render.py ...` is `spiknerf render ...`."""

import sys

from spiknerf.cli import main

if __name__ == "__main__":
    sys.exit(main(["render", *sys.argv[1:]]))

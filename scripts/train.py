"""`python scripts/train.py ...` is `spiknerf train ...`."""

import sys

from spiknerf.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))

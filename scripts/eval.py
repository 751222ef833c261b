"""`python scripts/eval.py ...` is `spiknerf eval ...`."""

import sys

from spiknerf.cli import main

if __name__ == "__main__":
    sys.exit(main(["eval", *sys.argv[1:]]))

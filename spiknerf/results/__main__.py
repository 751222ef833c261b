"""``python -m spiknerf.results``: regenerate every table in the docs from ``docs/results/*.json``.

``--check`` rewrites nothing and exits 1 when a document differs from what its
results files generate (a table edited by hand, or a results file changed
without regenerating).
"""

from __future__ import annotations

import argparse
import sys

from spiknerf.errors import InputError
from spiknerf.results.docs import DOCS, regenerate, unused_tables


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spiknerf.results", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a document is stale")
    args = parser.parse_args(argv)
    try:
        changed = regenerate(write=not args.check)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for name in unused_tables():
        print(f"note: docs/results/{name}.json is shown in no document", file=sys.stderr)
    for doc in changed:
        print(f"{'stale' if args.check else 'regenerated'}: {doc.relative_to(DOCS[0].parents[1])}")
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())

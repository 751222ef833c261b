"""Measured numbers as data: results files under ``docs/results/``, and the docs generated from them.

* :mod:`~spiknerf.results.store`: the results file (command, code version, machine, date, rows),
  atomic writing and checked loading.
* :mod:`~spiknerf.results.render` and :mod:`~spiknerf.results.tables`: how each table is written in Markdown.
* :mod:`~spiknerf.results.docs`: the generated blocks of ``docs/benchmarks.md`` and the README
  (``python -m spiknerf.results``).
* :mod:`~spiknerf.results.measure`: process memory for the drivers.
"""

from spiknerf.results.store import (
    MEASURED,
    RESULTS_DIR,
    Results,
    load_results,
    load_table,
    provenance,
    write_results,
)

__all__ = ["MEASURED", "RESULTS_DIR", "Results", "load_results", "load_table", "provenance", "write_results"]

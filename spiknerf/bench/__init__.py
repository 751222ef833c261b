"""Classification and temporal benchmarks built on :mod:`spiknerf.neurons` only."""

"""spiknerf: spiking neural radiance fields (Spik-NeRF) and SNN benchmarks on a shared neuron core."""

__version__ = "0.1.0"

"""The shared neuron core: dynamics, surrogates, layers, re-parameterization and op counting.

Multi-step tensors are ``[T, B, ...]``. Nothing here imports ``spiknerf.nerf`` or
``spiknerf.bench``.
"""

from spiknerf.neurons.accumulate import accumulate_linear
from spiknerf.neurons.dynamics import RESETS, LIFParameters, LIFState, lif_multistep, lif_step
from spiknerf.neurons.hetsyn import HetSynLIF, HetSynParameters, HetSynState, hetsyn_step
from spiknerf.neurons.layers import SpikeLinear, SpikeReadout, SpikingLinear, SpikingMLP
from spiknerf.neurons.lif import BinaryLIF, LIFNeuron, SignedTernaryLIF, TernaryLIF, make_neuron
from spiknerf.neurons.ops import E_AC_PJ, E_MAC_PJ, OpCount, OpRecorder, count_ops, linear_ops
from spiknerf.neurons.reparam import calibrate_offsets, reparameterize
from spiknerf.neurons.surrogate import SURROGATES, Surrogate, heaviside

__all__ = [
    "BinaryLIF",
    "E_AC_PJ",
    "E_MAC_PJ",
    "HetSynLIF",
    "HetSynParameters",
    "HetSynState",
    "LIFNeuron",
    "LIFParameters",
    "LIFState",
    "OpCount",
    "OpRecorder",
    "RESETS",
    "SURROGATES",
    "SignedTernaryLIF",
    "SpikeLinear",
    "SpikeReadout",
    "SpikingLinear",
    "SpikingMLP",
    "Surrogate",
    "TernaryLIF",
    "accumulate_linear",
    "calibrate_offsets",
    "count_ops",
    "heaviside",
    "hetsyn_step",
    "lif_multistep",
    "lif_step",
    "linear_ops",
    "make_neuron",
    "reparameterize",
]

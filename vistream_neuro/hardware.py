"""Neuromorphic chips as data: resource limits, energy and time per operation, each value sourced.

A preset says what one chip offers (cores, neurons and synaptic memory per core, axon limits,
weight and spike-payload bits) and what its operations cost.  Every value names its source;
values no publication gives are marked as estimates (:attr:`HardwareModel.estimates`), so a
report can say which of its figures rest on them.  The mapper (:mod:`vistream_neuro.hw_mapping`)
reads only this.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from neurons.loihi import WEIGHT_BITS

DAVIES = ("M. Davies et al., 'Loihi: a neuromorphic manycore processor with on-chip learning', "
          "IEEE Micro 38(1), 2018")
INTEL_L2 = ("Intel Labs, 'Taking neuromorphic computing to the next level with Loihi 2', technology "
            "brief, 2021")


@dataclass(frozen=True)
class HardwareModel:
    name: str
    cores_per_chip: int
    mesh: tuple[int, int]  # cores per chip as rows x columns of the on-chip mesh
    neurons_per_core: int
    synaptic_memory_bits: int  # per core
    weight_bits: int
    max_input_axons: int  # distinct sources whose spikes a core can receive
    max_output_axons: int  # (source neuron, destination core) routes a core can hold
    payload_bits: int  # graded-spike payload; 0: binary spikes only
    weight_sharing: bool  # convolution kernels stored once per core, not once per synapse
    sop_pj: float  # one synaptic operation (a spike meeting one synapse)
    neuron_update_pj: float  # an active neuron update
    idle_update_pj: float  # a neuron visited in a step without input
    spike_pj: float  # sending one spike message (within a tile)
    hop_pj: float  # each router hop of a message on the mesh
    chip_hop_pj: float  # a message crossing from one chip to another
    step_pj: float  # per time step, the barrier synchronisation of the chip
    sop_ns: float  # time of one synaptic operation in a core
    update_ns: float  # time of one neuron update in a core
    hop_ns: float  # time of one router hop
    barrier_ns: float  # the time step's synchronisation
    sources: dict[str, str] = field(default_factory=dict, compare=False)
    estimates: frozenset[str] = frozenset()

    def describe(self) -> dict:
        """The preset as a report section: values, their sources, and which are estimates."""
        values = {k: v for k, v in self.__dict__.items() if k not in ("sources", "estimates")}
        return {**values, "mesh": list(self.mesh), "sources": dict(self.sources),
                "estimates": sorted(self.estimates)}


def _loihi1() -> HardwareModel:
    table2 = f"{DAVIES}, Table 2"
    return HardwareModel(
        name="loihi1", cores_per_chip=128, mesh=(8, 16), neurons_per_core=1024,
        synaptic_memory_bits=128 * 1024 * 8, weight_bits=WEIGHT_BITS, max_input_axons=4096,
        max_output_axons=4096, payload_bits=0, weight_sharing=False,
        sop_pj=23.6, neuron_update_pj=52.0, idle_update_pj=1.7, spike_pj=1.7,
        hop_pj=(3.5 + 5.3) / 2, chip_hop_pj=10 * (3.5 + 5.3) / 2, step_pj=0.0,
        sop_ns=3.5, update_ns=8.4, hop_ns=(4.1 + 6.5) / 2, barrier_ns=465.0,
        sources={
            "cores_per_chip": f"{DAVIES}: 128 neuromorphic cores per chip",
            "neurons_per_core": f"{DAVIES}: 1,024 compartments per core",
            "synaptic_memory_bits": f"{DAVIES}: 128 KB synaptic memory per core",
            "max_input_axons": f"{DAVIES}: fan-in axon limit per core (4,096)",
            "max_output_axons": f"{DAVIES}: fan-out axon limit per core (4,096)",
            "weight_bits": f"{DAVIES}: synaptic weights of 1 to 8 bits (plus sign mode)",
            "payload_bits": f"{DAVIES}: binary spikes; a signed (ternary) source needs two axons",
            "sop_pj": f"{table2}: minimum energy per synaptic spike operation",
            "neuron_update_pj": f"{table2}: neuron update, active",
            "idle_update_pj": f"{table2}: neuron update, inactive",
            "spike_pj": f"{table2}: within-tile spike energy",
            "hop_pj": f"{table2}: mean of east-west (3.5 pJ) and north-south (5.3 pJ) hop energy",
            "hop_ns": f"{table2}: mean of east-west (4.1 ns) and north-south (6.5 ns) hop latency",
            "barrier_ns": f"{table2}: mesh-wide barrier synchronisation, 113-465 ns (upper bound used)",
            "mesh": "estimate: 128 cores laid out 8 x 16",
            "chip_hop_pj": "estimate: ten mesh hops per chip-to-chip crossing",
            "step_pj": "estimate: not published; barrier energy left out (0)",
            "sop_ns": "estimate: synaptic operation time",
            "update_ns": "estimate: neuron update time",
            "weight_sharing": f"{DAVIES}: synapses are stored per connection (no kernel sharing)",
        },
        estimates=frozenset({"mesh", "chip_hop_pj", "step_pj", "sop_ns", "update_ns"}),
    )


def _loihi2() -> HardwareModel:
    l1 = _loihi1()
    from_l1 = ("estimate: Intel published no per-operation figure for Loihi 2; the Loihi 1 value "
               f"({DAVIES}, Table 2) is used")
    return HardwareModel(
        name="loihi2", cores_per_chip=128, mesh=(8, 16), neurons_per_core=8192,
        synaptic_memory_bits=128 * 1024 * 8, weight_bits=WEIGHT_BITS, max_input_axons=4096,
        max_output_axons=4096, payload_bits=32, weight_sharing=True,
        sop_pj=l1.sop_pj, neuron_update_pj=l1.neuron_update_pj, idle_update_pj=l1.idle_update_pj,
        spike_pj=l1.spike_pj, hop_pj=l1.hop_pj, chip_hop_pj=l1.chip_hop_pj, step_pj=0.0,
        sop_ns=l1.sop_ns / 2, update_ns=l1.update_ns / 2, hop_ns=l1.hop_ns, barrier_ns=l1.barrier_ns / 2,
        sources={
            "cores_per_chip": f"{INTEL_L2}: 128 neuro cores per chip",
            "mesh": "8 x 16 mesh of neuro cores (as reported with the chip's announcement)",
            "neurons_per_core": f"{INTEL_L2}: up to 8,192 neurons per core (1 M per chip)",
            "synaptic_memory_bits": f"{INTEL_L2}: 128 KB of SRAM per core, flexibly partitioned",
            "weight_bits": f"{INTEL_L2}: synaptic weights of 1 to 8 bits",
            "payload_bits": f"{INTEL_L2}: graded spikes with payloads of up to 32 bits",
            "weight_sharing": f"{INTEL_L2}: compressed (e.g. convolutional) synaptic encodings",
            "max_input_axons": "estimate: Loihi 1's 4,096 input axons per core",
            "max_output_axons": "estimate: Loihi 1's 4,096 output axons per core",
            **{k: from_l1 for k in ("sop_pj", "neuron_update_pj", "idle_update_pj", "spike_pj", "hop_pj",
                                    "chip_hop_pj", "hop_ns")},
            "step_pj": "estimate: not published; barrier energy left out (0)",
            **{k: f"estimate: half the Loihi 1 value (a cautious reading of the up to 10x faster processing "
                  f"in {INTEL_L2})"
               for k in ("sop_ns", "update_ns", "barrier_ns")},
        },
        estimates=frozenset({"max_input_axons", "max_output_axons", "sop_pj", "neuron_update_pj",
                             "idle_update_pj", "spike_pj", "hop_pj", "chip_hop_pj", "step_pj", "sop_ns",
                             "update_ns", "hop_ns", "barrier_ns"}),
    )


SANAFE = ("J. Boyle et al., 'SANA-FE', IEEE TCAD 2025; its Loihi architecture file examples/loihi.yaml "
          "(sanafe 2.2.9), per-event figures from SPICE simulation and Davies et al. 2018")


def _loihi1_sanafe() -> HardwareModel:
    """Loihi 1's limits with SANA-FE's per-event figures, so the mapper and a SANA-FE replay price
    events alike; what still differs is explained in docs/ARCHITECTURE.md, "Hardware mapping"."""
    l1 = _loihi1()
    values = dict(
        sop_pj=35.5, neuron_update_pj=51.2 + 21.6, idle_update_pj=51.2 + 21.6, spike_pj=111.0,
        hop_pj=(3.0 + 4.2) / 2, chip_hop_pj=(3.0 + 4.2) / 2, sop_ns=3.8, update_ns=6.0 + 3.7,
        hop_ns=(4.1 + 6.5) / 2, barrier_ns=1400.0)
    sources = {
        "sop_pj": f"{SANAFE}: loihi_dense_synapse energy_process_spike 35.5 pJ",
        "neuron_update_pj": f"{SANAFE}: loihi_lif energy_access_neuron 51.2 + energy_update_neuron 21.6 pJ",
        "idle_update_pj": f"{SANAFE}: access + update as active: its Loihi LIF updates every neuron whose "
                          "potential is nonzero, and an ST-BIF residual never is",
        "spike_pj": f"{SANAFE}: loihi_out energy_message_out 111 pJ per message (its 69.3 pJ spike out "
                    "per neuron spike is not modelled apart)",
        "hop_pj": f"{SANAFE}: mean of east/west 3.0 and north/south 4.2 pJ per hop",
        "chip_hop_pj": f"{SANAFE}: no chip-to-chip link; one mesh hop",
        "sop_ns": f"{SANAFE}: loihi_dense_synapse latency_process_spike 3.8 ns",
        "update_ns": f"{SANAFE}: loihi_lif latency_access_neuron 6.0 + latency_update_neuron 3.7 ns",
        "hop_ns": f"{SANAFE}: mean of east/west 4.1 and north/south 6.5 ns per hop",
        "barrier_ns": f"{SANAFE}: latency_sync table 0.6-1.8 us by active tiles (1.4 us used)",
    }
    return dataclasses.replace(l1, name="loihi1_sanafe", **values, sources={**l1.sources, **sources},
                               estimates=l1.estimates - {"chip_hop_pj", "sop_ns", "update_ns"})


PRESETS = {"loihi1": _loihi1, "loihi2": _loihi2, "loihi1_sanafe": _loihi1_sanafe}


def hardware_model(name: str) -> HardwareModel:
    if name not in PRESETS:
        raise ValueError(f"unknown hardware model {name!r}; valid models: {', '.join(PRESETS)}")
    return PRESETS[name]()

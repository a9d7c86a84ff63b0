"""Energy models as data, each with its source; selectable by name and reported side by side.

A model prices the counted operations of a frame (:class:`vistream_neuro.accounting.FrameOps`)
and, for the dense ANN, its MACs.
"""

from __future__ import annotations

from dataclasses import dataclass

from vistream_neuro.accounting import FrameOps
from vistream_neuro.hardware import DAVIES, HardwareModel, hardware_model


@dataclass(frozen=True)
class EnergyModel:
    name: str
    mac_pj: float  # dense multiply-accumulate (ANN layers, analog input of the SNN)
    sop_pj: float  # synaptic operation driven by a spike (an accumulate)
    neuron_update_pj: float = 0.0  # event-driven (active) neuron update
    idle_update_pj: float = 0.0  # neuron visited in a time step without input or spike
    spike_pj: float = 0.0  # sending one spike message
    source: str = ""

    def snn_pj(self, ops: FrameOps) -> float:
        active = sum(ops.updates_event.values())
        idle = sum(ops.updates_dense.values()) - active
        return (ops.total_input_macs * self.mac_pj + ops.total_sops * self.sop_pj
                + active * self.neuron_update_pj + idle * self.idle_update_pj
                + ops.total_spikes * self.spike_pj)

    def ann_pj(self, macs: int) -> float:
        return macs * self.mac_pj


def _loihi(hw: HardwareModel) -> EnergyModel:
    """Loihi's per-operation energies, read from the chip preset (one set of figures, one source)."""
    return EnergyModel("loihi", mac_pj=hw.sop_pj, sop_pj=hw.sop_pj, neuron_update_pj=hw.neuron_update_pj,
                       idle_update_pj=hw.idle_update_pj, spike_pj=hw.spike_pj,
                       source=f"{DAVIES}, Table 2, as in the {hw.name} chip preset (min. energy per "
                              f"synaptic spike op {hw.sop_pj} pJ, per neuron update active/inactive "
                              f"{hw.neuron_update_pj}/{hw.idle_update_pj} pJ, within-tile spike "
                              f"{hw.spike_pj} pJ). The analog input is priced as graded-spike synaptic ops "
                              "(an estimate: Loihi has no MAC unit).")


HOROWITZ = "M. Horowitz, 'Computing's energy problem', ISSCC 2014, 45 nm figures"
MODELS: dict[str, EnergyModel] = {
    m.name: m
    for m in (
        EnergyModel("45nm_fp32", mac_pj=3.7 + 0.9, sop_pj=0.9,
                    source=f"{HOROWITZ}: 32-bit float multiply 3.7 pJ + add 0.9 pJ"),
        EnergyModel("45nm_int8", mac_pj=0.2 + 0.03, sop_pj=0.03,
                    source=f"{HOROWITZ}: 8-bit integer multiply 0.2 pJ + add 0.03 pJ"),
        _loihi(hardware_model("loihi1")),
    )
}


def energy_model(name: str) -> EnergyModel:
    if name not in MODELS:
        raise ValueError(f"unknown energy model {name!r}; valid models: {', '.join(MODELS)}")
    return MODELS[name]

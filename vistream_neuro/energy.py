"""Energy models as data, each with its source; selectable by name and reported side by side.

A model prices the counted operations of a frame (:class:`vistream_neuro.accounting.FrameOps`)
and, for the dense ANN, its MACs.
"""

from __future__ import annotations

from dataclasses import dataclass

from vistream_neuro.accounting import FrameOps


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


HOROWITZ = "M. Horowitz, 'Computing's energy problem', ISSCC 2014, 45 nm figures"
LOIHI = ("M. Davies et al., 'Loihi: a neuromorphic manycore processor with on-chip learning', "
         "IEEE Micro 38(1), 2018, Table 2 (min. energy per synaptic spike op 23.6 pJ, per neuron "
         "update active/inactive 52/1.7 pJ, within-tile spike 1.7 pJ). The analog input is priced "
         "as graded-spike synaptic ops (an estimate: Loihi has no MAC unit).")

MODELS: dict[str, EnergyModel] = {
    m.name: m
    for m in (
        EnergyModel("45nm_fp32", mac_pj=3.7 + 0.9, sop_pj=0.9,
                    source=f"{HOROWITZ}: 32-bit float multiply 3.7 pJ + add 0.9 pJ"),
        EnergyModel("45nm_int8", mac_pj=0.2 + 0.03, sop_pj=0.03,
                    source=f"{HOROWITZ}: 8-bit integer multiply 0.2 pJ + add 0.03 pJ"),
        EnergyModel("loihi", mac_pj=23.6, sop_pj=23.6, neuron_update_pj=52.0, idle_update_pj=1.7,
                    spike_pj=1.7, source=LOIHI),
    )
}


def energy_model(name: str) -> EnergyModel:
    if name not in MODELS:
        raise ValueError(f"unknown energy model {name!r}; valid models: {', '.join(MODELS)}")
    return MODELS[name]

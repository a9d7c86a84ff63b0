"""SANA-FE (Boyle et al., TCAD 2025; PyPI ``sanafe``) prices a recorded run on its Loihi model.

The only module that imports SANA-FE.  It builds the mapped graph as a SANA-FE network (every
population on the cores :class:`vistream_neuro.hw_mapping.Mapper` gave it, every explicit synapse
the mapper counts) on the ``loihi.yaml`` architecture SANA-FE ships, and *replays* the run: each
neuron is a SANA-FE ``input`` soma whose spike train is the one the run recorded
(:mod:`vistream_neuro.spike_trains`), so every neuron sends exactly the spikes the run sent and
SANA-FE prices the synaptic operations, messages, hops, neuron accesses and time steps they cause.
Replay rather than an ST-BIF soma plugin: the plugin would have to be compiled against SANA-FE's
C++ headers at install time and would re-derive spikes under SANA-FE's one-step synaptic delay,
which changes when spikes meet on residual joins; replay makes the spike equality hold by
construction and leaves SANA-FE's part to what it was validated for, the cost of events.

Two additions to ``loihi.yaml``, both stated in the report: the replay somas (``input`` model, one
unit per neuron slot as the model keeps its train per unit) carry the Loihi LIF soma's figures,
access + update every step (an ST-BIF residual is never zero, and SANA-FE's Loihi LIF updates every
neuron whose potential is nonzero) and spike out per spike; the host's input sits on cores after the
mapped ones with ``loihi.yaml``'s zero-cost input somas.  Weights are zero: SANA-FE's costs do not
depend on them, and an input soma refuses current.  Several chips are one wider mesh (SANA-FE models
no chip-to-chip links).
"""

from __future__ import annotations

import copy
import importlib.resources
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vistream_neuro import ir
from vistream_neuro.backend import BackendUnavailableError
from vistream_neuro.hw_mapping import Mapper
from vistream_neuro.spike_trains import FrameTrains, ReplayError

VERSION = "2.2.9"
TILE_CORES = 4  # loihi.yaml: 4 cores per tile, 8 x 4 tiles per chip
CHIP_TILES = (8, 4)
SLOTS = 1024  # neurons per core (loihi.yaml max_neurons_supported)
SYNAPSES = {"dense": "loihi_dense_synapse", "sparse": "loihi_sparse_synapse", "conv": "loihi_conv_synapse"}
SOURCE = ("J. Boyle et al., 'SANA-FE: Simulating Advanced Neuromorphic Architectures for Fast "
          "Exploration', IEEE TCAD 2025; sanafe " + VERSION + ", examples/loihi.yaml")


def _sanafe():
    try:
        import sanafe
    except ImportError as exc:
        raise BackendUnavailableError(f"--hw-sim sanafe needs the sanafe package ({VERSION}); install it "
                                      f"with make install") from exc
    return sanafe


@dataclass
class SanafeRun:
    """Per frame, SANA-FE's totals; per layer, the energy of its cores over all frames."""

    energy_j: list[float] = field(default_factory=list)
    latency_s: list[float] = field(default_factory=list)
    timesteps: list[int] = field(default_factory=list)
    synaptic_events: list[int] = field(default_factory=list)  # spike x synapse lookups
    neurons_fired: list[int] = field(default_factory=list)  # spikes SANA-FE's neurons sent
    energy_parts_j: dict[str, float] = field(default_factory=dict)  # synapse, soma, network, ...
    layer_energy_j: dict[str, float] = field(default_factory=dict)  # cores of each layer, all frames
    cores: int = 0
    synapse: str = "dense"


def architecture(cores: int, host_cores: int, slots: int, path: Path) -> Path:
    """``loihi.yaml`` on enough whole chips for ``cores`` cores, each core with ``slots`` replay
    somas and per-core energy logging, then tiles of ``host_cores`` cores holding the host's input
    (``loihi.yaml``'s zero-cost input somas), written to ``path``.  Only the somas a run uses are
    built: SANA-FE takes about 40 us per soma unit to build a chip."""
    import yaml

    text = importlib.resources.files("sanafe.examples").joinpath("loihi.yaml").read_text()
    arch = yaml.safe_load(text)["architecture"]
    chip_tiles = CHIP_TILES[0] * CHIP_TILES[1]
    tiles = chip_tiles * -(-cores // (chip_tiles * TILE_CORES))
    host_tiles = CHIP_TILES[1] * -(-host_cores // (CHIP_TILES[1] * TILE_CORES))  # whole mesh columns
    arch["attributes"]["width"] = (tiles + host_tiles) // CHIP_TILES[1]
    (tile,) = arch["tile"]
    (core,) = tile["core"]
    somas = {s["name"]: s for s in core["soma"]}
    lif = somas["loihi_lif"]["attributes"]
    replay = {"model": "input",
              "energy_access_neuron": lif["energy_access_neuron"] + lif["energy_update_neuron"],
              "latency_access_neuron": lif["latency_access_neuron"] + lif["latency_update_neuron"],
              "energy_update_neuron": 0.0, "latency_update_neuron": 0.0,
              "energy_spike_out": lif["energy_spike_out"], "latency_spike_out": lif["latency_spike_out"]}
    host = copy.deepcopy(tile)
    tile["name"] = f"loihi_tile[0..{tiles - 1}]"
    core["attributes"]["log_energy"] = True
    core["soma"] = [somas["loihi_lif"], {"name": f"replay[0..{slots - 1}]", "attributes": replay}]
    host["name"] = f"host_tile[{tiles}..{tiles + host_tiles - 1}]"
    host["core"][0]["name"] = f"host_core[0..{TILE_CORES - 1}]"
    host["core"][0]["soma"] = [somas["loihi_inputs[0..1023]"]]
    arch["tile"] = [tile, host]
    path.write_text(yaml.safe_dump({"architecture": arch}, sort_keys=False))
    return path


def _trains(frames: list[FrameTrains], name: str, size: int) -> dict[int, list[bool]]:
    """Per neuron that ever spikes, its spike train over all frames' steps."""
    total = sum(len(f.steps) for f in frames)
    spikes = np.zeros((size, total), dtype=bool)
    t = 0
    for frame in frames:
        for step in frame.steps:
            spikes[step[name], t] = True
            t += 1
    return {int(i): spikes[i].tolist() for i in np.flatnonzero(spikes.any(1))}


def replay(mapper: Mapper, frames: list[FrameTrains], synapse: str = "dense") -> SanafeRun:
    """Replay ``frames`` (a run's recorded messages) on SANA-FE's Loihi with ``mapper``'s placement."""
    sanafe = _sanafe()
    if synapse not in SYNAPSES:
        raise ValueError(f"synapse {synapse!r}: valid kinds are {', '.join(SYNAPSES)}")
    if mapper.hw.neurons_per_core > SLOTS or mapper.hw.payload_bits:
        raise ReplayError(f"SANA-FE's loihi.yaml is Loihi 1 (binary spikes, {SLOTS} neurons per core); "
                          f"the mapping is for {mapper.hw.name}")
    graph = mapper.graph
    input_size = int(np.prod(graph.input_shape))
    slots = {name: mapper.placement(name) for name in mapper.layers}
    used = max(int(offset.max()) + 1 for _, offset in slots.values())
    chip_cores = mapper.chips * CHIP_TILES[0] * CHIP_TILES[1] * TILE_CORES
    slots[ir.INPUT] = (chip_cores + np.arange(input_size) // SLOTS, np.arange(input_size) % SLOTS)
    with tempfile.TemporaryDirectory(prefix="sanafe_") as tmp:
        path = architecture(mapper.cores, -(-input_size // SLOTS), used, Path(tmp) / "loihi.yaml")
        arch = sanafe.load_arch(str(path))
        cores = arch.cores()
        net = sanafe.Network()
        groups = {}
        sizes = {ir.INPUT: input_size} | {name: layer.neurons for name, layer in mapper.layers.items()}
        for name, size in sizes.items():
            soma = "loihi_inputs" if name == ir.INPUT else "replay"
            group = groups[name] = net.create_neuron_group(name, size, model_attributes={})
            trains = _trains(frames, name, size)
            core, offset = slots[name]
            for i, neuron in enumerate(group):
                neuron.set_attributes(soma_hw_name=f"{soma}[{offset[i]}]",
                                      default_synapse_hw_name=SYNAPSES[synapse],
                                      dendrite_hw_name="loihi_dendrites",
                                      model_attributes={"spikes": trains[i]} if i in trains else {})
                neuron.map_to_core(cores[int(core[i])])
        for name, terms in mapper.terms.items():
            for term in terms:
                src, dst = mapper.synapse_pairs(term, name)
                groups[term.source].connect_neurons_sparse(groups[name], {"w": np.zeros(len(src))},
                                                           list(zip(src.tolist(), dst.tolist(), strict=True)))
        chip = sanafe.SpikingChip(arch)
        chip.load(net)
        return _simulate(chip, mapper, frames, Path(tmp) / "perf.csv", synapse)


def _core_columns(header: list[str], mapper: Mapper) -> dict[str, list[int]]:
    """Perf-trace columns of each layer's cores (``loihi_tile[t].loihi_core[c].energy``)."""
    column = {name: i for i, name in enumerate(header)}
    owner = {}
    for name, layer in mapper.layers.items():
        for core in range(layer.first_core, layer.first_core + layer.cores):
            owner[core] = name
    per_layer: dict[str, list[int]] = {name: [] for name in mapper.layers}
    for core, name in owner.items():
        key = f"loihi_tile[{core // TILE_CORES}].loihi_core[{core % TILE_CORES}].energy"
        per_layer[name].append(column[key])
    return per_layer


def _simulate(chip, mapper: Mapper, frames: list[FrameTrains], perf: Path, synapse: str) -> SanafeRun:
    run = SanafeRun(cores=mapper.cores, synapse=synapse)
    layer_energy = dict.fromkeys(mapper.layers, 0.0)
    for frame in frames:
        steps = len(frame.steps)
        result = chip.sim(steps, perf_trace=str(perf))
        table = np.atleast_2d(np.genfromtxt(perf, delimiter=",", skip_header=1))
        header = perf.read_text().splitlines()[0].split(",")
        for name, columns in _core_columns(header, mapper).items():
            layer_energy[name] += float(table[:, columns].sum())
        energy = result["energy"]
        run.energy_j.append(float(energy["total"]))
        run.latency_s.append(float(result["sim_time"]))
        run.timesteps.append(steps)
        run.synaptic_events.append(int(result["spikes"]))
        run.neurons_fired.append(int(result["neurons_fired"]))
        for part, value in energy.items():
            if part != "total":
                run.energy_parts_j[part] = run.energy_parts_j.get(part, 0.0) + float(value)
    run.layer_energy_j = layer_energy
    return run

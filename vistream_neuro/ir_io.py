"""Spiking graph <-> HDF5 file (h5py), exact: arrays are stored as float64 datasets as they are.

Layout: root attributes ``format``, ``version``, ``input_shape``, ``output``; group ``nodes``
with one subgroup per node (``00000``, ``00001``, ... in graph order) holding attribute ``type``,
scalar and tuple fields as attributes and arrays as datasets.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import h5py
import numpy as np

from vistream_neuro import ir
from vistream_neuro.atomic import write_h5_atomic

FORMAT, VERSION = "vistream-neuro/spiking-graph", 1
NODE_TYPES = {cls.__name__: cls for cls in (ir.Conv, ir.Linear, ir.Neuron, ir.SigmaDelta, ir.Add,
                                            ir.AvgPool, ir.MaxPool, ir.Flatten)}
_ARRAYS = {"weight", "bias", "scale", "payload", "threshold"}


def save_graph(graph: ir.SpikingGraph, path: str | Path) -> None:
    """Write ``graph`` to ``path`` atomically (no partial file is left on failure)."""

    def write(f: h5py.File) -> None:
        f.attrs.update(format=FORMAT, version=VERSION, output=graph.output,
                       input_shape=np.array(graph.input_shape, dtype=np.int64))
        nodes = f.create_group("nodes")
        for i, node in enumerate(graph.nodes):
            g = nodes.create_group(f"{i:05d}")
            g.attrs["type"] = type(node).__name__
            for fld in dataclasses.fields(node):
                value = getattr(node, fld.name)
                if fld.name in _ARRAYS:
                    if value is not None:
                        g.create_dataset(fld.name, data=np.asarray(value, dtype=np.float64))
                elif fld.name == "inputs":
                    g.attrs[fld.name] = np.array(value, dtype=h5py.string_dtype())
                elif isinstance(value, tuple):
                    g.attrs[fld.name] = np.array(value, dtype=np.int64)
                else:
                    g.attrs[fld.name] = value

    write_h5_atomic(path, write)


def _field_value(g: h5py.Group, fld: dataclasses.Field):
    if fld.name in _ARRAYS:
        return g[fld.name][()] if fld.name in g else None
    if fld.name not in g.attrs and fld.default is not dataclasses.MISSING:
        return fld.default  # a field added after the file was written
    value = g.attrs[fld.name]
    if fld.name == "inputs":
        return tuple(v.decode() if isinstance(v, bytes) else str(v) for v in value)
    if isinstance(value, np.ndarray):
        return tuple(int(v) for v in value)
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating | float):
        return float(value)
    return str(value)


def load_graph(path: str | Path) -> ir.SpikingGraph:
    """Read a graph written by :func:`save_graph`; a foreign or damaged file is a clear error."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such spiking-graph file")
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != FORMAT:
                raise ir.GraphError(f"{path}: not a vistream-neuro spiking graph (format attribute)")
            if int(f.attrs["version"]) != VERSION:
                raise ir.GraphError(f"{path}: graph format version {f.attrs['version']} unsupported")
            nodes = []
            for key in sorted(f["nodes"]):
                g = f["nodes"][key]
                cls = NODE_TYPES.get(str(g.attrs["type"]))
                if cls is None:
                    raise ir.GraphError(f"{path}: node {key} has unknown type {g.attrs['type']!r}")
                nodes.append(cls(**{fld.name: _field_value(g, fld) for fld in dataclasses.fields(cls)}))
            return ir.SpikingGraph(tuple(int(d) for d in f.attrs["input_shape"]), nodes,
                                   str(f.attrs["output"]))
    except (OSError, KeyError) as exc:
        raise ir.GraphError(f"{path}: unreadable spiking-graph file ({exc})") from None

"""The spiking graph round-trips through HDF5 exactly; foreign files are clear errors."""

import dataclasses

import h5py
import numpy as np
import pytest
import torch

from vistream_neuro import ir, models
from vistream_neuro.converter import to_spiking_graph
from vistream_neuro.ir_io import load_graph, save_graph
from vistream_neuro.quant import calibrate, make_qann


def _assert_same(a: ir.SpikingGraph, b: ir.SpikingGraph) -> None:
    assert a.input_shape == b.input_shape and a.output == b.output and a.shapes == b.shapes
    assert len(a.nodes) == len(b.nodes)
    for x, y in zip(a.nodes, b.nodes, strict=True):
        assert type(x) is type(y)
        for f in dataclasses.fields(x):
            u, v = getattr(x, f.name), getattr(y, f.name)
            if isinstance(u, np.ndarray):
                assert u.dtype == v.dtype and np.array_equal(u, v), (x.name, f.name)
            else:
                assert u == v, (x.name, f.name)


@pytest.mark.parametrize("name,size", [("mobilenetv2", (64, 32)), ("tiny", (32, 32))])
def test_round_trip_is_exact(tmp_path, name, size):
    qann = make_qann(models.build(name), bits=4).double()
    calibrate(qann, torch.rand(2, 3, *size, dtype=torch.float64))
    graph = to_spiking_graph(qann, (3, *size))
    save_graph(graph, tmp_path / "g.h5")
    _assert_same(graph, load_graph(tmp_path / "g.h5"))
    kinds = {type(n).__name__ for n in graph.nodes}
    assert {"Conv", "Neuron"} <= kinds


def test_foreign_and_missing_files_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        load_graph(tmp_path / "nope.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = 1
    with pytest.raises(ir.GraphError, match="not a vistream-neuro spiking graph"):
        load_graph(tmp_path / "other.h5")
    (tmp_path / "junk.h5").write_bytes(b"garbage")
    with pytest.raises(ir.GraphError, match="unreadable"):
        load_graph(tmp_path / "junk.h5")

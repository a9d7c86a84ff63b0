"""The export command: the IR file round trip, a netx file of a sequential network, and clear
refusals of what netx and NIR cannot express."""

import h5py
import numpy as np
import pytest

from evals.export import main
from tests.test_netx_export import small_cnn
from vistream_neuro import ir
from vistream_neuro.ir_io import load_graph, save_graph
from vistream_neuro.nir_export import NIRExportError, export_nir, nir_blockers


def test_graph_round_trip(tmp_path):
    out = tmp_path / "tiny.h5"
    assert main(["--format", "graph", "--model", "tiny", "--out", str(out)]) == 0
    graph = load_graph(out)
    assert graph.input_shape == (3, 64, 64) and len(graph.neurons) == 5


def test_netx_file_of_a_sequential_graph(tmp_path):
    source, out = tmp_path / "seq.h5", tmp_path / "seq_netx.h5"
    save_graph(small_cnn(), source)
    assert main(["--format", "netx", "--graph", str(source), "--sigma-delta", "0.5", "--out", str(out)]) == 0
    with h5py.File(out, "r") as f:
        types = [f["layer"][str(i)]["type"][()].decode() for i in range(len(f["layer"]))]
        assert types == ["input", "conv", "conv", "flatten", "dense"]
        assert f.attrs["threshold_factor"] == 0.5


def test_refusals_name_what_is_missing(tmp_path, capsys):
    out = tmp_path / "x.h5"
    assert main(["--format", "netx", "--model", "tiny", "--out", str(out)]) == 2
    assert "stem_2: netx (lava-dl 0.6) implements no pooling layer" in capsys.readouterr().err
    assert main(["--format", "nir", "--model", "tiny", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "NIR 1.0 cannot express: ST-BIF neuron" in err and "max pooling" in err
    assert not out.exists()
    assert main(["--format", "graph", "--model", "tiny", "--out", str(tmp_path / "no" / "x.h5")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["--format", "graph", "--graph", str(tmp_path / "missing.h5"), "--out", str(out)]) == 2
    assert "missing.h5" in capsys.readouterr().err


def test_nir_lists_every_neuron_and_refuses_linear_only_graphs(tmp_path):
    graph = small_cnn()
    assert nir_blockers(graph) == {next(iter(nir_blockers(graph))): ["n1", "n2"]}
    linear = ir.SpikingGraph((4,), [ir.Linear("fc", ir.INPUT, np.ones((2, 4)))], "fc")
    assert nir_blockers(linear) == {}
    with pytest.raises(NIRExportError, match="no neurons"):
        export_nir(linear, tmp_path / "l.nir")

"""Lava 0.10 / lava-dl 0.6 on Python 3.11 through our import fix (neurons/lava_compat.py)."""

import base64
import hashlib
import importlib.metadata
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest

from neurons.lava_compat import FIXES
from tests.conftest import requires_lava

pytestmark = requires_lava


def _run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=600, cwd=Path(__file__).parents[1],
    )


def test_plain_import_of_var_model_fails_on_this_python():
    """The control: without our fix, Python >= 3.11 rejects lava's dataclass defaults."""
    result = _run_python("import lava.magma.compiler.var_model")
    assert result.returncode != 0
    assert "mutable default" in result.stderr


def test_every_lava_and_lava_dl_module_imports_through_our_entry_point():
    result = _run_python(
        """
        import importlib, pathlib
        from neurons.lava_compat import import_lava
        import_lava()
        import lava
        root = pathlib.Path(list(lava.__path__)[0]).parent
        names = sorted(
            ".".join(p.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
            for p in (root / "lava").rglob("*.py")
        )
        failed = []
        for name in names:
            try:
                importlib.import_module(name)
            except Exception as exc:
                failed.append(f"{name}: {type(exc).__name__}: {exc}")
        dl = [n for n in names if n.startswith("lava.lib.dl.")]
        print("MODULES", len(names), "DL", len(dl))
        print("FAILED", failed)
        """
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = dict(line.split(" ", 1) for line in result.stdout.splitlines() if line[:1].isupper())
    counts = summary["MODULES"].split()
    assert int(counts[0]) > 150 and int(counts[2]) > 30, summary
    assert summary["FAILED"] == "[]"


@pytest.mark.parametrize("module", list(FIXES))
def test_fixed_modules_are_the_wheels_own_files(module):
    """Our fixes live in the import system, not in patched site-packages files."""
    dist = importlib.metadata.distribution("lava-nc")
    (entry,) = [f for f in dist.files if str(f) == module.replace(".", "/") + ".py"]
    assert entry.hash is not None and entry.hash.mode == "sha256"
    digest = hashlib.sha256(Path(dist.locate_file(entry)).read_bytes()).digest()
    assert base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == entry.hash.value


def test_lava_imports_after_the_multiprocessing_start_method_was_fixed():
    """tqdm (and others) create multiprocessing locks, which fixes the start method early."""
    result = _run_python(
        """
        import multiprocessing as mp
        mp.RLock()
        from neurons.lava_compat import import_lava
        import_lava("lava.proc.dense.process")
        print("START", mp.get_start_method())
        """
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "START fork" in result.stdout


def test_fixed_module_has_independent_default_instances():
    from neurons.lava_compat import import_lava

    var_model = import_lava("lava.magma.compiler.var_model")
    a, b = var_model.CoreEncoder(), var_model.CoreEncoder()
    assert a == b and a.x is not b.x
    assert var_model.__file__.endswith("lava/magma/compiler/var_model.py")


SPIKES_IN = np.array([[1, 0, 1, 1, 0, 0], [0, 1, 1, 0, 0, 1]])


def _run_dense_lif(weights, tag: str, du, vth):
    from neurons.lava_compat import import_lava

    import_lava()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.lif.process import LIF

    steps = SPIKES_IN.shape[1]
    source, dense = Source(data=SPIKES_IN), Dense(weights=weights)
    lif = LIF(shape=(2,), du=du, dv=0, vth=vth, bias_mant=0)
    sink = Sink(shape=(2,), buffer=steps)
    source.s_out.connect(dense.s_in)
    dense.a_out.connect(lif.a_in)
    lif.s_out.connect(sink.a_in)
    try:
        source.run(condition=RunSteps(steps), run_cfg=Loihi2SimCfg(select_tag=tag))
        return sink.data.get(), lif.v.get()
    finally:
        source.stop()


# Worked by hand.  Dense delivers W @ s(t-1) at step t; the LIF has no current memory (du = 1,
# i.e. 4095 in 12-bit fixed point) and no voltage decay, spikes when v > vth and resets v to 0.
# With W = 2 * [[3, 2], [1, -1]], vth = 8:  input currents at steps 1..6 are
# n0: 0, 6, 4, 10, 6, 0 -> v: 0, 6, 10>8 spike, 10>8 spike, 6, 6
# n1: 0, 2, -2, 0, 2, 0 -> v: 0, 2, 0, 0, 2, 2      (fixed point: everything x 2**6)
W_EVEN = 2 * np.array([[3, 2], [1, -1]])
EXPECTED_SPIKES = np.array([[0, 0, 1, 1, 0, 0], [0, 0, 0, 0, 0, 0]])
EXPECTED_V = np.array([6.0, 2.0])


def test_dense_lif_network_floating_pt_matches_hand_computation():
    spikes, v = _run_dense_lif(W_EVEN, "floating_pt", du=1.0, vth=8)
    np.testing.assert_array_equal(spikes, EXPECTED_SPIKES)
    np.testing.assert_array_equal(v, EXPECTED_V)


def test_dense_lif_network_fixed_pt_matches_hand_computation():
    spikes, v = _run_dense_lif(W_EVEN, "fixed_pt", du=4095, vth=8)
    np.testing.assert_array_equal(spikes, EXPECTED_SPIKES)
    np.testing.assert_array_equal(v, EXPECTED_V * 64)


def test_fixed_pt_dense_truncates_mixed_sign_weights_to_seven_bit_mantissa():
    """Loihi keeps 8 bits incl. sign for mixed-sign weights: odd weights lose their LSB.

    W = [[3, 2], [1, -1]] acts as [[2, 2], [0, -2]]; with vth = 4 (256 in fixed point):
    n0 currents 0, 2, 2, 4, 2, 0 (x64) -> v 0, 128, 256 (not > 256), 512 spike, 128, 128;
    n1 currents 0, 0, -2, -2, 0, 0 (x64) -> v 0, 0, -128, -256, -256, -256.
    """
    spikes, v = _run_dense_lif(np.array([[3, 2], [1, -1]]), "fixed_pt", du=4095, vth=4)
    np.testing.assert_array_equal(spikes, [[0, 0, 0, 1, 0, 0], [0, 0, 0, 0, 0, 0]])
    np.testing.assert_array_equal(v, [128, -256])


def test_netx_runs_a_network_written_with_h5py(tmp_path):
    """lava-dl netx reads our HDF5 (input + one CUBA dense layer) and gives the hand answer.

    netx picks weight mantissa and exponent itself, so W = [[3, 2], [1, -1]] stays exact;
    vThMant 4: n0 v 0, 3, 5 spike, 5 spike, 3, 3 and n1 v 0, 1, 0, 0, 1, 1 (x64 in hardware units).
    """
    from neurons.lava_compat import import_lava

    import_lava()
    from lava.lib.dl import netx
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source

    path = tmp_path / "net.h5"
    with h5py.File(path, "w") as f:
        layers = f.create_group("layer")
        inp = layers.create_group("0")
        inp["type"], inp["shape"] = np.bytes_("input"), np.array([2])
        dense = layers.create_group("1")
        dense["type"], dense["shape"] = np.bytes_("dense"), np.array([2])
        dense["weight"] = np.array([[3.0, 2.0], [1.0, -1.0]])
        neuron = dense.create_group("neuron")
        neuron["type"] = np.bytes_("CUBA")
        neuron["iDecay"], neuron["vDecay"], neuron["vThMant"] = 4096, 0, 4
        neuron["refDelay"], neuron["gradedSpike"] = 1, False
    net = netx.hdf5.Network(net_config=str(path))
    assert len(net) == 1
    source, sink = Source(data=SPIKES_IN), Sink(shape=(2,), buffer=SPIKES_IN.shape[1])
    source.s_out.connect(net.inp)
    net.out.connect(sink.a_in)
    try:
        net.run(condition=RunSteps(SPIKES_IN.shape[1]), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        spikes, v = sink.data.get(), net.layers[0].neuron.v.get()
    finally:
        net.stop()
    np.testing.assert_array_equal(spikes, EXPECTED_SPIKES)
    np.testing.assert_array_equal(v, [192, 64])

"""The sweep command: one row per configuration, files written, bad arguments refused."""

import json

from evals.sweep import main


def test_sweep_over_bits_and_stride(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(["--act-bits", "2,4", "--stride", "1,2", "--frames", "3", "--out", str(out)]) == 0
    rows = json.loads((out / "sweep.json").read_text())["rows"]
    assert [(r["act_bits"], r["stride"]) for r in rows] == [(2, 1), (2, 2), (4, 1), (4, 2)]
    for r in rows:
        assert r["snn_max_abs_err_vs_qann"] < 1e-9  # the SNN still equals the QANN
        assert r["sops_locc"] < r["sops_reset"] and r["energy_uj_ann"] > 0
    # more activation bits: the QANN is closer to the ANN and the reset SNN needs more operations
    assert rows[2]["cosine_qann_snn"] > rows[0]["cosine_qann_snn"]
    assert rows[2]["sops_reset"] > rows[0]["sops_reset"]
    assert (out / "sweep.csv").read_text().count("\n") == 5 and (out / "sweep.png").stat().st_size > 0
    assert main(["--act-bits", "two", "--out", str(tmp_path / "bad")]) == 2
    assert "--act-bits" in capsys.readouterr().err

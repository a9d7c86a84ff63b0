"""`make bench`'s measurements, run small: every SNN run equals the QANN, the JSON has what the issue
asks for, and the memory run reports its marks."""

import json

import torch

from evals.bench import SNN_RUNS, bench_case, main, memory_run


def test_bench_case_times_every_network_and_every_run_equals_the_qann():
    row = bench_case("tiny", (32, 32), 1, 3, torch.device("cpu"))
    assert row["ann_ms_per_frame"] > 0 and row["qann_ms_per_frame"] > 0
    for name in SNN_RUNS:
        assert row[name]["level_mismatch"] == 0 and row[name]["converged"], name
        assert row[name]["over_qann"] == row[name]["ms_per_frame"] / row["qann_ms_per_frame"]
    assert row["locc"]["timesteps_mean"] == row["locc_plain"]["timesteps_mean"] > 1
    assert row["layerwise"]["timesteps_mean"] == 1
    batched = bench_case("tiny", (32, 32), 3, 2, torch.device("cpu"))
    assert "locc_plain" not in batched and batched["locc"]["level_mismatch"] == 0


def test_memory_run_and_the_json(tmp_path):
    memory = memory_run("tiny", (32, 32), 20, torch.device("cpu"), distinct=4)
    assert memory["frames"] == 20 and memory["rss_mib_end"] > 0
    assert main(["--device", "cpu", "--models", "tiny", "--sizes", "32x32", "--batches", "2",
                 "--frames", "2", "--memory-frames", "0", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "stream_cpu.json").read_text())
    assert report["cases"][0]["batch"] == 2 and "memory" not in report

"""``torch`` backend: the library's dense QANN reference (:mod:`vistream_neuro.reference`) as a
backend, so a run can be compared with the reference on the same code path."""

from __future__ import annotations

import torch

from vistream_neuro import ir
from vistream_neuro.backend import Backend
from vistream_neuro.options import ExecutionOptions
from vistream_neuro.reference import DenseQANN


def _lower(graph: ir.SpikingGraph, options: ExecutionOptions, dtype: torch.dtype) -> DenseQANN:
    return DenseQANN(graph, options.device, dtype)


BACKEND = Backend("torch", _lower, devices=("cpu", "cuda"), hysteresis=True)

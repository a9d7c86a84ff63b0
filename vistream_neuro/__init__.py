"""vistream-neuro: quantized CNNs as ST-BIF spiking networks that stream video (ViStream's LoCC and
DiffEncode) on SpikingJelly, Lava and a dense torch reference.

The public API, importable as ``import vistream_neuro as vn``::

    net = vn.convert(module, frames, act_bits=4, calibration="perchannel")   # any traceable CNN
    result = vn.run(net, frames, backend="spikingjelly", schedule="layerwise")

Names resolve on first use, so importing a submodule (``vistream_neuro.ir``, ...) stays cheap.
The library imports ``neurons`` only, never a backend or evals (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "convert": "vistream_neuro.api",
    "run": "vistream_neuro.api",
    "RunResult": "vistream_neuro.api",
    "Converted": "vistream_neuro.pipeline",
    "ExecutionOptions": "vistream_neuro.options",
    "OptionsError": "vistream_neuro.options",
    "ConversionError": "vistream_neuro.tracing",
    "InputNorm": "vistream_neuro.normalisation",
    "SpikingGraph": "vistream_neuro.ir",
    "UnknownBackendError": "vistream_neuro.backend",
    "BackendUnavailableError": "vistream_neuro.backend",
    "UnsupportedOptionsError": "vistream_neuro.backend",
    "load_graph": "vistream_neuro.ir_io",
    "save_graph": "vistream_neuro.ir_io",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'vistream_neuro' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])

"""The Lava processes the lowering needs besides ST-BIF, Dense and the io injector.

- :class:`ExactConv`: Lava's ``Conv`` process with exact process models.  Lava's own models
  compute in float32 (``floating_pt``), ignore ``weight_exp`` (``fixed_pt``) and hold ``groups``
  in 8 bits (MobileNetV2's depthwise layers have up to 960 groups); these keep Lava's layout
  ``(X, Y, C)``, its convolution (flipped kernel) and its one-step synaptic delay.
- :class:`Delay`: holds a branch back so both inputs of a residual add arrive in the same step.
- :class:`MaxPoolChange`: max pooling on spikes: pools the accumulated input, sends the change.
- :class:`StepRecorder`: hands what chosen ports carried in every step to the host through one
  external pipe (as Lava's ``Extractor`` does for one port), so the host never reads Vars
  element by element.

All data here is in Lava's layout, ``(X, Y, C)`` for maps.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from neurons.lava_compat import import_lava
from neurons.lava_reset import Resettable
from neurons.lava_torch import TorchInProcess

import_lava()

from lava.magma.core.decorator import implements, requires, tag  # noqa: E402
from lava.magma.core.model.py.model import PyLoihiProcessModel  # noqa: E402
from lava.magma.core.model.py.ports import PyInPort, PyOutPort  # noqa: E402
from lava.magma.core.model.py.type import LavaPyType  # noqa: E402
from lava.magma.core.process.ports.ports import InPort, OutPort  # noqa: E402
from lava.magma.core.process.process import AbstractProcess  # noqa: E402
from lava.magma.core.process.variable import Var  # noqa: E402
from lava.magma.core.resources import CPU  # noqa: E402
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol  # noqa: E402
from lava.proc.conv.process import Conv  # noqa: E402

INT = np.int64  # host-side integer type of fixed-point models (messages are checked at 24 bits)


def to_torch_map(x: np.ndarray) -> torch.Tensor:
    """``(X, Y, C)`` -> ``(1, C, Y, X)`` float64 tensor."""
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 1, 0), dtype=np.float64))[None]


def from_torch_map(x: torch.Tensor) -> np.ndarray:
    return x[0].numpy().transpose(2, 1, 0)


class ExactConv(Conv):
    """Lava's ``Conv`` (weights ``(C_out, kx, ky, C_in/groups)``, true convolution), exact models,
    plus an ``epoch`` Var: the host bumps it to clear the synaptic buffer at the next step."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.epoch = Var(shape=(1,), init=0)


class _ExactConvModel(Resettable, TorchInProcess):
    kernel_size: np.ndarray = LavaPyType(np.ndarray, np.int32)
    stride: np.ndarray = LavaPyType(np.ndarray, np.int32)
    padding: np.ndarray = LavaPyType(np.ndarray, np.int32)
    dilation: np.ndarray = LavaPyType(np.ndarray, np.int32)
    groups: np.ndarray = LavaPyType(np.ndarray, np.int32)
    num_message_bits: np.ndarray = LavaPyType(np.ndarray, np.int32)
    weight_exp: np.ndarray = LavaPyType(np.ndarray, np.int32)
    num_weight_bits: np.ndarray = LavaPyType(np.ndarray, np.int32)

    def _torch_weight(self) -> torch.Tensor:
        """The kernel flipped back for torch's correlation, cached: weights are static."""
        if "_w" not in self.__dict__:
            flipped = self.weight[:, ::-1, ::-1].transpose(0, 3, 2, 1)
            self.__dict__["_w"] = torch.from_numpy(flipped.astype(np.float64, order="C", copy=True))
        return self.__dict__["_w"]

    def _conv(self, x: np.ndarray) -> np.ndarray:
        out = F.conv2d(to_torch_map(x), self._torch_weight(), stride=tuple(self.stride[::-1]),
                       padding=tuple(self.padding[::-1]), dilation=tuple(self.dilation[::-1]),
                       groups=int(self.groups[0]))
        return from_torch_map(out) * 2.0 ** int(self.weight_exp[0])

    def reset_state(self) -> None:
        self.a_buf = np.zeros_like(self.a_buf)

    def run_spk(self) -> None:
        self.reset_if_asked()
        self.a_out.send(self.a_buf)
        self.a_buf = self._cast(self._conv(self.s_in.recv()))


@implements(proc=ExactConv, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyExactConvFloat(_ExactConvModel):
    """float64 convolution."""

    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    a_buf: np.ndarray = LavaPyType(np.ndarray, float)
    weight: np.ndarray = LavaPyType(np.ndarray, float)

    @staticmethod
    def _cast(x: np.ndarray) -> np.ndarray:
        return x


@implements(proc=ExactConv, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi", "fixed_pt")
class PyExactConvFixed(_ExactConvModel):
    """Integer mantissas times ``2**weight_exp`` on integer messages, summed exactly (float64
    holds every partial sum below 2^53; the receiving neuron checks the 24-bit message range)."""

    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, INT)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, INT)
    a_buf: np.ndarray = LavaPyType(np.ndarray, INT)
    weight: np.ndarray = LavaPyType(np.ndarray, INT, precision=8)

    @staticmethod
    def _cast(x: np.ndarray) -> np.ndarray:
        return np.rint(x).astype(INT)


class Delay(AbstractProcess):
    """Sends what it received ``steps`` steps earlier (zeros at first)."""

    def __init__(self, *, shape: tuple[int, ...], steps: int, name: str | None = None) -> None:
        if steps < 1:
            raise ValueError(f"{name}: a delay needs steps >= 1, got {steps}")
        super().__init__(shape=shape, name=name)
        self.a_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.buffer = Var(shape=(steps, *shape), init=0)
        self.epoch = Var(shape=(1,), init=0)


class _DelayModel(Resettable, PyLoihiProcessModel):
    def reset_state(self) -> None:
        self.buffer = np.zeros_like(self.buffer)

    def run_spk(self) -> None:
        self.reset_if_asked()
        slot = (self.time_step - 1) % self.buffer.shape[0]
        self.s_out.send(self.buffer[slot].copy())
        self.buffer[slot] = self.a_in.recv()


@implements(proc=Delay, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyDelayFloat(_DelayModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    buffer: np.ndarray = LavaPyType(np.ndarray, float)


@implements(proc=Delay, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi", "fixed_pt")
class PyDelayFixed(_DelayModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, INT)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, INT)
    buffer: np.ndarray = LavaPyType(np.ndarray, INT)


class MaxPoolChange(AbstractProcess):
    """Max pooling in a spiking network: pools the input accumulated since the last reset and
    sends the change of the pooled value, so its total converges to the max of the quantised
    input.  ``kernel``, ``stride``, ``padding`` are in (Y, X) order as in the IR."""

    def __init__(self, *, in_shape: tuple[int, int, int], out_shape: tuple[int, int, int],
                 kernel, stride, padding, name: str | None = None) -> None:
        super().__init__(in_shape=in_shape, out_shape=out_shape, kernel=tuple(kernel),
                         stride=tuple(stride), padding=tuple(padding), name=name)
        self.a_in = InPort(shape=in_shape)
        self.s_out = OutPort(shape=out_shape)
        self.total = Var(shape=in_shape, init=0)
        self.pooled = Var(shape=out_shape, init=0)
        self.epoch = Var(shape=(1,), init=0)


class _MaxPoolModel(Resettable, TorchInProcess):
    def reset_state(self) -> None:
        self.total, self.pooled = np.zeros_like(self.total), np.zeros_like(self.pooled)

    def run_spk(self) -> None:
        self.reset_if_asked()
        self.total = self.total + self.a_in.recv()
        p = self.proc_params
        pooled = from_torch_map(F.max_pool2d(to_torch_map(self.total), p["kernel"], p["stride"],
                                             p["padding"])).astype(self.pooled.dtype)
        change = pooled - self.pooled
        self.pooled = pooled
        self.s_out.send(change)


@implements(proc=MaxPoolChange, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyMaxPoolChangeFloat(_MaxPoolModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    total: np.ndarray = LavaPyType(np.ndarray, float)
    pooled: np.ndarray = LavaPyType(np.ndarray, float)


@implements(proc=MaxPoolChange, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi", "fixed_pt")
class PyMaxPoolChangeFixed(_MaxPoolModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, INT)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, INT)
    total: np.ndarray = LavaPyType(np.ndarray, INT)
    pooled: np.ndarray = LavaPyType(np.ndarray, INT)


class StepRecorder(AbstractProcess):
    """Receives on ``in_0 .. in_{n-1}`` and hands, per step, all of it flattened and concatenated
    (float64) to the host, which calls :meth:`receive` once per step run.

    Its process model has one port per probe, so it is made per recorder by
    :func:`recorder_model`; pass it in the run config's ``exception_proc_model_map``.
    """

    def __init__(self, *, shapes: list[tuple[int, ...]], buffer_size: int, name: str | None = None):
        super().__init__(shapes=list(shapes), name=name)
        self.sizes = [int(np.prod(s)) for s in shapes]
        for i, shape in enumerate(shapes):
            setattr(self, f"in_{i}", InPort(shape=shape))
        self.out = OutPort(shape=(sum(self.sizes),))
        self.out.flag_external_pipe(buffer_size=buffer_size)

    def receive(self) -> list[np.ndarray]:
        """The next step's data, split back into the probes' flat arrays."""
        data = self.out.external_pipe_csp_recv_port.recv()
        return np.split(data, np.cumsum(self.sizes)[:-1])


def recorder_model(recorder: StepRecorder) -> type:
    """A process model class with one float64 ``PyInPort`` per probe of ``recorder``."""

    def run_spk(self) -> None:
        data = np.concatenate([getattr(self, f"in_{i}").recv().ravel() for i in range(self._n)])
        self.out.csp_ports[-1].send(data)

    ports = {f"in_{i}": LavaPyType(PyInPort.VEC_DENSE, float) for i in range(len(recorder.sizes))}
    cls = type(f"PyStepRecorder{len(recorder.sizes)}", (PyLoihiProcessModel,), {
        **ports, "out": LavaPyType(PyOutPort.VEC_DENSE, float), "_n": len(recorder.sizes),
        "run_spk": run_spk, "__module__": __name__,
    })
    return implements(proc=StepRecorder, protocol=LoihiProtocol)(requires(CPU)(cls))

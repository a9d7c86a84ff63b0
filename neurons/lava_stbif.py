"""ST-BIF as a Lava process, with a floating-point and a bit-accurate fixed-point process model.

Select the model with ``Loihi2SimCfg(select_tag="floating_pt" | "fixed_pt")``.  The floating-point
model runs the reference itself (:func:`neurons.stbif.stbif_step`, and
:func:`neurons.stbif.stbif_settle` when settling), on float64 state with the residual in units of
the scale, so it equals the SpikingJelly neuron bit for bit; the fixed-point one is its integer
form (below), where floor division settles exactly where stepping ends.  The bias enters as
charge once, ``bias_pending`` steps after the host sets it (counting this step as 1): once per
stream in LoCC, once per frame in reset mode, and delayed by the layer's depth in a network whose
synapses delay by one step per hop.

``settle=True`` is the ``layerwise`` schedule: a neuron fires until quiet within the step, sending its
whole change of count as one graded message ``change * payload`` (the network's delays bring all of a
frame's input to a layer in one step, so every neuron sends exactly its change of level, once).

Fixed point, as on Loihi: the residual is a signed 24-bit integer ``v = q * threshold`` (so the
threshold is the layer's scale in integer units and ``v`` starts at ``threshold / 2``; the
threshold must be even), input currents and the bias are integers in the same units, and a
spike leaves as a graded payload ``spike * payload`` (the scale in the next layer's fixed-point
units).  Faults are never silent: a residual that would leave the 24-bit range is saturated, an
input current that does not fit a 24-bit message and an odd threshold are refused; the model
records the fault and its step in ``fault``, and
:func:`raise_on_fault` (called by the host after each run) raises an error naming the layer.
(A process model that raises inside Lava leaves the processes waiting on its ports blocked, so
faults travel through a variable instead.)
"""

from __future__ import annotations

import numpy as np
import torch

from neurons.lava_compat import import_lava
from neurons.lava_reset import Resettable
from neurons.lava_torch import TorchInProcess
from neurons.loihi import MESSAGE_BITS, MESSAGE_LIMIT, STATE_BITS, STATE_LIMIT
from neurons.stbif import stbif_settle, stbif_step

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


class StateOverflowError(OverflowError):
    """A fixed-point residual left its signed 24-bit range."""


class STBIF(AbstractProcess):
    """ST-BIF neurons of one layer.

    ``scale``: the layer's quantisation step (float model) or its integer threshold (fixed model),
    a scalar or one value per neuron; ``pos_max`` > 0 >= ``neg_min``: bounds of the released
    count; ``bias``: charge added once after ``bias_pending`` is set (it starts set);
    ``payload``: value sent per spike (defaults to ``scale``, i.e. the output current);
    ``bias_delay``: steps the bias waits after a reset (the layer's depth in synaptic hops);
    ``settle``: fire until quiet in each step (the ``layerwise`` schedule), not one quantum per step.
    """

    def __init__(self, *, shape: tuple[int, ...], scale, pos_max: int, neg_min: int = 0, bias=0,
                 payload=None, bias_delay: int = 0, settle: bool = False, name: str | None = None,
                 **kwargs) -> None:
        super().__init__(shape=shape, name=name, bias_delay=bias_delay, settle=settle, **kwargs)
        if not (neg_min <= 0 < pos_max):
            raise ValueError(f"{name}: ST-BIF bounds need neg_min <= 0 < pos_max")
        scale = np.broadcast_to(np.asarray(scale, dtype=float), shape).copy()
        if not np.all(scale > 0):
            raise ValueError(f"{name}: ST-BIF scale (threshold) must be > 0")

        self.a_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.scale = Var(shape=shape, init=scale)
        self.payload = Var(shape=shape, init=np.broadcast_to(
            scale if payload is None else np.asarray(payload, dtype=float), shape).copy())
        self.pos_max = Var(shape=(1,), init=pos_max)
        self.neg_min = Var(shape=(1,), init=neg_min)
        self.bias = Var(shape=shape, init=np.broadcast_to(np.asarray(bias, dtype=float), shape).copy())
        self.bias_pending = Var(shape=(1,), init=bias_delay + 1)  # steps until the bias enters
        # the residual, set by the model at its first step: in units of the scale (floating_pt), or
        # times the integer threshold (fixed_pt), starting at half of it
        self.q = Var(shape=shape, init=0)
        self.acc = Var(shape=shape, init=0)
        self.spikes = Var(shape=shape, init=0)  # spikes of the last step (settle: the change of count)
        self.fault = Var(shape=(2,), init=0)  # (fault code, first step with a fault)
        self.epoch = Var(shape=(1,), init=0)  # bumped by the host: back to the initial state
        self.layer_name = name or "ST-BIF"


FAULT_OVERFLOW, FAULT_ODD_THRESHOLD, FAULT_INPUT_RANGE = 1, 2, 3


def raise_on_fault(neuron: STBIF) -> None:
    """Raise an error naming the layer if its fixed-point model recorded a fault."""
    code, step = (int(v) for v in neuron.fault.get())
    if code == FAULT_OVERFLOW:
        raise StateOverflowError(f"{neuron.layer_name}: residual left the signed {STATE_BITS}-bit "
                                 f"range at step {step} (fixed point); lower the input scale or "
                                 "the weights' exponent")
    if code == FAULT_INPUT_RANGE:
        raise StateOverflowError(f"{neuron.layer_name}: input current at step {step} does not fit a "
                                 f"signed {MESSAGE_BITS}-bit message (fixed point); lower the input "
                                 "scale or the weights' exponent")
    if code == FAULT_ODD_THRESHOLD:
        raise ValueError(f"{neuron.layer_name}: fixed-point thresholds must be even (the residual "
                         "starts at threshold / 2)")


class _STBIFModel(Resettable, PyLoihiProcessModel):
    def reset_state(self) -> None:
        half = self.scale // 2 if self.q.dtype.kind == "i" else np.full(self.q.shape, 0.5)
        self.q = half.astype(self.q.dtype)
        self.acc = np.zeros_like(self.acc)
        self.spikes = np.zeros_like(self.spikes)
        self.bias_pending[:] = self.proc_params["bias_delay"] + 1


def _charge(model, current):
    """This step's input current, plus the bias when it is due (after a reset if one was asked)."""
    model.reset_if_asked()
    if model.bias_pending[0] > 0:
        model.bias_pending[:] = model.bias_pending - 1
        if model.bias_pending[0] == 0:
            current = current + model.bias
    return current


def _step(model, current, threshold) -> np.ndarray:
    """The integer update of the fixed-point model, residual ``q`` in input units: integers add
    exactly, so settling by floor division ends where stepping does."""
    current = _charge(model, current)  # may reset the state: before reading it
    model.q[:] = model.q + current
    if model.proc_params["settle"]:  # fire until quiet: q in [0, threshold) unless a bound stops it
        spike = np.clip(model.q // threshold, model.neg_min[0] - model.acc,
                        model.pos_max[0] - model.acc).astype(np.int32)
    else:
        pos = (model.q >= threshold) & (model.acc < model.pos_max[0])
        neg = (model.q < 0) & (model.acc > model.neg_min[0])
        spike = pos.astype(np.int32) - neg.astype(np.int32)
    model.acc[:] = model.acc + spike
    model.q[:] = model.q - spike * threshold
    model.spikes[:] = spike
    return spike


@implements(proc=STBIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PySTBIFFloat(_STBIFModel, TorchInProcess):
    """The reference neuron in float64: ``q`` is the residual in units of the scale, spikes (or,
    settling, the change of count) carry ``payload``."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    scale: np.ndarray = LavaPyType(np.ndarray, float)
    payload: np.ndarray = LavaPyType(np.ndarray, float)
    pos_max: np.ndarray = LavaPyType(np.ndarray, int)
    neg_min: np.ndarray = LavaPyType(np.ndarray, int)
    bias: np.ndarray = LavaPyType(np.ndarray, float)
    bias_pending: np.ndarray = LavaPyType(np.ndarray, int)
    q: np.ndarray = LavaPyType(np.ndarray, float)
    acc: np.ndarray = LavaPyType(np.ndarray, int)
    spikes: np.ndarray = LavaPyType(np.ndarray, int)
    fault: np.ndarray = LavaPyType(np.ndarray, int)

    def run_spk(self) -> None:
        current = torch.from_numpy(_charge(self, self.a_in.recv()))
        bounds = (torch.tensor(float(self.pos_max[0]), dtype=torch.float64),
                  torch.tensor(float(self.neg_min[0]), dtype=torch.float64))
        rule = stbif_settle if self.proc_params["settle"] else stbif_step
        spike, q, acc = rule(current, torch.from_numpy(self.q), torch.from_numpy(self.acc).double(),
                             torch.from_numpy(self.scale), *bounds)
        self.q[:], self.acc[:], self.spikes[:] = q.numpy(), acc.numpy(), spike.numpy()
        self.s_out.send(self.spikes * self.payload)


@implements(proc=STBIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi", "fixed_pt")
class PySTBIFFixed(_STBIFModel):
    """Integer state as on Loihi: 24-bit residual, integer threshold, graded integer payloads."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=STATE_BITS)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=STATE_BITS)
    scale: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=STATE_BITS)
    payload: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=STATE_BITS)
    pos_max: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=16)
    neg_min: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=16)
    bias: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=STATE_BITS)
    bias_pending: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=16)
    q: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=STATE_BITS)
    acc: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=16)
    spikes: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=16)
    fault: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=32)

    def _record_fault(self, code: int) -> None:
        if not self.fault[0]:
            self.fault[:] = (code, self.time_step)

    def run_spk(self) -> None:
        current = self.a_in.recv().astype(np.int64)
        if np.any(np.abs(current) >= MESSAGE_LIMIT):
            self._record_fault(FAULT_INPUT_RANGE)
        if np.any(self.scale % 2):
            self._record_fault(FAULT_ODD_THRESHOLD)
        self.q = self.q.astype(np.int64)
        spike = _step(self, current, self.scale)
        if np.any(np.abs(self.q) >= STATE_LIMIT):
            self._record_fault(FAULT_OVERFLOW)
            np.clip(self.q, -STATE_LIMIT, STATE_LIMIT - 1, out=self.q)
        self.q = self.q.astype(np.int32)
        self.s_out.send(spike * self.payload)

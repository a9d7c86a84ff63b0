"""What one evaluation run does: model, data, execution options and the comparison to make.

Execution choices live in one :class:`~vistream_neuro.options.ExecutionOptions` (validated once);
each task keeps its own options (e.g. :class:`evals.tasks.mot.task.MotOptions`) in
``task_options`` under its name, so this holds no task's details.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from evals.harness.workers import SERIAL, Workers
from vistream_neuro.normalisation import InputNorm
from vistream_neuro.options import ExecutionOptions
from vistream_neuro.quant import NeuronBounds


@dataclass
class EvalConfig:
    backend: str
    task: str = "stream"
    model: str = "tiny"  # a built-in model or package.module:factory
    weights: Path | None = None
    source: str | Path = "synthetic"
    start: int = 0
    frames: int | None = 10  # None: whole sequences (tracking tasks)
    input_size: tuple[int, int] | None = (64, 64)  # None: the sequences' own size
    crop: tuple[int, int, int, int] | None = None
    act_bits: int | None = 4  # None when ``level`` sets the bounds
    level: int | None = None  # ViStream's level instead of act_bits (NeuronBounds.from_level)
    calibration: str = "percentile"
    stability_weight: float | None = None  # the stable calibration's penalty weight (None: its default)
    input_norm: InputNorm | None = None  # a user model's normalisation (built-ins have their own)
    seed: int = 0
    execution: ExecutionOptions = field(default_factory=ExecutionOptions)
    compare: bool = False  # also the dense ANN, the QANN, reset and locc on the same frames
    all_schedules: bool = False  # also LoCC in every schedule and spike encoding
    sigma_delta: float | None = None  # also the sigma-delta baseline, threshold = factor x scale
    hw_map: str | None = None  # chip preset to map the graph onto (vistream_neuro.hardware)
    hw_sim: str | None = None  # replay the primary run on this simulator with that mapping (sanafe)
    input_deadband: int = 0  # 8-bit levels an input value must move by before it is sent again
    task_options: dict[str, object] = field(default_factory=dict)  # per task name, its own options
    workers: Workers = SERIAL  # where a task's sequences stream (evals.harness.workers)

    @property
    def mode(self) -> str:
        return self.execution.mode

    @property
    def schedule(self) -> str:
        """The schedule as reports name it: ``all`` when every schedule runs."""
        return "all" if self.all_schedules else self.execution.schedule

    @property
    def neuron_bounds(self) -> NeuronBounds:
        """The quantizers' integer ranges: from ``level`` if given, else from ``act_bits``."""
        if self.level is not None:
            return NeuronBounds.from_level(self.level)
        return NeuronBounds.from_bits(self.act_bits)

    def options_for(self, task: str, default: object) -> object:
        """The options of ``task`` (``default`` when none were given)."""
        return self.task_options.get(task, default)

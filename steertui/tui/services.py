"""The app's services that are not widgets: how knobs become steering, and the vector provider.

Nothing here imports textual. The app holds one `VectorProvider`; the real one reads the
dimension library and builds or loads vectors through `steertui.vectors`, tests pass a fake.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from steertui.home import Home

if TYPE_CHECKING:
    import torch

    from steertui.engine import Engine
    from steertui.engine.protocol import ChatEngine
    from steertui.prefs.signals import ModelSignals
    from steertui.search.calibration_queue import CalibrationQueue
    from steertui.search.space import SteerCandidate
    from steertui.vectors.file import SteeringVector

Progress = Callable[[float, str], None]


class DimensionLike(Protocol):
    """What the app needs to know about a dimension (`vectors.dimensions.Dimension` is one)."""

    @property
    def name(self) -> str: ...

    @property
    def negative(self) -> str: ...

    @property
    def positive(self) -> str: ...

    @property
    def description(self) -> str: ...


class VectorLike(Protocol):
    """A loaded steering vector (`vectors.file.SteeringVector` is one)."""

    @property
    def c_max(self) -> float: ...

    def direction(self, layer: int) -> torch.Tensor: ...


class PlanLike(Protocol):
    """A steering plan for one row (`engine.RowPlan` is one): stored with each answer."""

    def snapshot(self) -> dict[str, Any]: ...


class ReplySignals(Protocol):
    """LEARN's reading of a reply by the model itself (`prefs.ModelSignals` is one)."""

    def placements(self, text: str, prompt: Any = None) -> dict[str, float]: ...

    def dissatisfaction(self, reply: str) -> float | None: ...


class VectorProvider(Protocol):
    """Dimensions for the loaded model, their vectors, and steering plans from knob values."""

    def dimensions(self) -> Sequence[DimensionLike]: ...

    def vector(self, engine: ChatEngine, name: str, progress: Progress) -> VectorLike: ...

    def coeff(self, vector: VectorLike, knob: float) -> float: ...

    def order(self, names: Sequence[str]) -> list[str]:
        """The order to load `names` in: knobs the user touched first."""
        ...

    def touched(self, name: str) -> None:
        """A knob was moved: its vector (and its calibration) goes before the others'."""
        ...

    def range_status(self, name: str) -> str:
        """The knob's label for the range its vector is on ('' when measured)."""
        ...

    def close(self) -> None:
        """The app is closing: stop background work (a calibration) at its next batch."""
        ...

    def plan(
        self, vectors: Mapping[str, VectorLike], knobs: Mapping[str, float]
    ) -> PlanLike | None: ...

    def signals(
        self,
        engine: ChatEngine,
        vectors: Mapping[str, VectorLike],
        dimensions: list[DimensionLike],
    ) -> ReplySignals | None:
        """LEARN's model signals over the loaded model, or None."""
        ...

    def candidate_plan(
        self, engine: ChatEngine, candidate: SteerCandidate, vectors: Mapping[str, VectorLike]
    ) -> PlanLike | None:
        """A search candidate exactly as the search ran it: every vector at its own layer, with
        its schedule and coefficient, text vectors included (built here: a forward pass)."""
        ...


class LibraryProvider:
    """The real provider: the home's dimension library, vectors built once per model and cached.

    A knob steers as soon as its vector is built, on the provisional range the extraction
    wrote; its measured range comes from a background calibration (`CalibrationQueue`) that
    serves every waiting dimension in shared batched passes, the knob touched last first.
    While a vector is provisional its `progress` callback keeps being told how the
    calibration stands (`range_status`), and when it is done the vector object the app holds
    carries the calibrated range.
    """

    def __init__(self, home: Home, model_id: str) -> None:
        from steertui.vectors.dimensions import DimensionLibrary

        self.home = home
        self.model_id = model_id
        self.library = DimensionLibrary(home, model_id)
        self._queue: CalibrationQueue | None = None
        self._touched: list[str] = []
        self._listeners: dict[str, Progress] = {}
        self._vectors: dict[str, SteeringVector] = {}

    def dimensions(self) -> list[DimensionLike]:
        return list(self.library.all())

    def vector(self, engine: ChatEngine, name: str, progress: Progress) -> SteeringVector:
        """The dimension's vector, built (or read) now; on a real model an uncalibrated one
        comes back at once on its provisional range and is calibrated in the background."""
        from steertui.engine import Engine
        from steertui.search.calibrate import is_calibrated
        from steertui.vectors.build import load_for_model
        from steertui.vectors.dimensions import is_toy_model

        if not isinstance(engine, Engine):
            raise TypeError(f"the dimension library builds vectors on an Engine, not {engine!r}")

        def counted(done: int, total: int) -> None:
            progress(done / total if total else 0.0, f"building {name} ({done}/{total})")

        dimension = self.library.get(name)
        vec = load_for_model(engine, dimension, home=self.home, progress=counted)
        if is_toy_model(str(engine.model_id)) or is_calibrated(vec, str(engine.model_id)):
            return vec  # the toy keeps its trained range
        self._listeners[name] = progress
        self._vectors[name] = vec
        self._calibration_queue(engine).add(name, vec, dimension)
        return vec

    def order(self, names: Sequence[str]) -> list[str]:
        """`names` in the order their vectors should be built: the knobs touched (latest
        first) before the rest."""
        touched = [n for n in self._touched if n in names]
        return touched + [n for n in names if n not in touched]

    def touched(self, name: str) -> None:
        """A user moved this knob: its vector is built and calibrated before the others'."""
        if name in self._touched:
            self._touched.remove(name)
        self._touched.insert(0, name)
        if self._queue is not None:
            self._queue.touch(name)

    def range_status(self, name: str) -> str:
        """The knob's label for its range: '' once calibrated (or on a range that needs none),
        else "(provisional range, calibrating 40%)" and the like."""
        from steertui.search.calibrate import PROVISIONAL, range_kind

        vec = self._vectors.get(name)
        if vec is None or range_kind(vec, self.model_id) != PROVISIONAL:
            return ""
        state = self._queue.state(name) if self._queue is not None else None
        if state is None:
            return "(provisional range)"
        if state.error:
            return "(provisional range: calibration failed)"
        if state.rows_done:
            return f"(provisional range, calibrating {state.fraction:.0%})"
        return "(provisional range, calibration queued)"

    def wait_calibrated(self, timeout: float | None = None) -> bool:
        """Until every queued calibration is done (True) or `timeout` s (False)."""
        return self._queue.wait(timeout) if self._queue is not None else True

    def close(self) -> None:
        """Stop the background calibration after its batch in flight."""
        if self._queue is not None:
            self._queue.close()

    def _calibration_queue(self, engine: Engine) -> CalibrationQueue:
        from steertui.search.calibration_queue import CalibrationQueue

        if self._queue is None or self._queue.engine is not engine:
            if self._queue is not None:
                self._queue.close()
            self._queue = CalibrationQueue(engine, on_change=self._changed)
            for name in self._touched:
                self._queue.touch(name)
        return self._queue

    def _changed(self, name: str) -> None:
        listener = self._listeners.get(name)
        if listener is not None:
            state = self._queue.state(name) if self._queue is not None else None
            listener(state.fraction if state is not None else 1.0, self.range_status(name))

    def coeff(self, vector: VectorLike, knob: float) -> float:
        from steertui.vectors.knobs import knob_to_coeff

        return knob_to_coeff(knob, vector.c_max)

    def plan(
        self, vectors: Mapping[str, VectorLike], knobs: Mapping[str, float]
    ) -> PlanLike | None:
        """One RowPlan with every loaded dimension (zero knobs too, so a live move steers)."""
        if not vectors:
            return None
        from steertui.vectors.file import SteeringVector
        from steertui.vectors.knobs import plan_from_knobs

        loaded = {d: v for d, v in vectors.items() if isinstance(v, SteeringVector)}
        # the chat's answers are watched by the coherence guard (the footer says what it did)
        return plan_from_knobs({d: knobs.get(d, 0.0) for d in loaded}, loaded, guard=True)

    def signals(
        self,
        engine: ChatEngine,
        vectors: Mapping[str, VectorLike],
        dimensions: list[DimensionLike],
    ) -> ModelSignals | None:
        from steertui.prefs.signals import ModelSignals

        return ModelSignals(engine, vectors, dimensions) if vectors else None

    def candidate_plan(
        self, engine: ChatEngine, candidate: SteerCandidate, vectors: Mapping[str, VectorLike]
    ) -> PlanLike | None:
        from steertui.engine import Engine
        from steertui.search.evaluate import PlanBuilder

        if not isinstance(engine, Engine):
            raise TypeError(f"search candidates are planned on an Engine, not {engine!r}")

        def load(name: str) -> VectorLike:
            return vectors[name] if name in vectors else self.vector(engine, name, _quiet)

        return PlanBuilder(engine, load).plan(candidate)


def _quiet(fraction: float, text: str) -> None:
    """Progress nobody watches (a vector built while applying a run)."""


def steering_snapshot(plan: PlanLike | None, knobs: Mapping[str, float]) -> dict[str, Any]:
    """What the store keeps with an answer: the plan's exact snapshot plus the knob values."""
    return {
        "plan": plan.snapshot() if plan is not None else None,
        "knobs": {k: float(v) for k, v in knobs.items()},
    }


def sampling_dict(sampling: Any) -> dict[str, Any]:
    if sampling is None:
        return {}
    if hasattr(sampling, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(sampling)
    return dict(sampling)


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit in ("B", "KiB") else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def memory_in_use(engine: ChatEngine | None) -> str:
    """GPU memory allocated by torch on a CUDA device, else this process's resident memory."""
    import torch

    device = str(getattr(engine, "device", "cpu"))
    if device.startswith("cuda") and torch.cuda.is_available():
        return format_bytes(torch.cuda.memory_allocated(torch.device(device))) + " GPU"
    try:
        import os

        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
        return format_bytes(pages * os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, IndexError, AttributeError):
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return format_bytes(peak if sys.platform == "darwin" else peak * 1024) + " peak"

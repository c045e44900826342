"""The heatmap panel: the focused dimension and the layer heatmap of the last answer on its
direction, computed by a capture worker when the answer, the focus or the vector changes."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.containers import VerticalScroll

from steertui.errors import SteertuiError
from steertui.safe_text import visible
from steertui.tui.chat_session import ChatSession, LastAnswer
from steertui.tui.messages import HeatmapReady
from steertui.tui.model import ModelSlot
from steertui.tui.remote_engine import RemoteEngine
from steertui.tui.services import VectorLike
from steertui.tui.steering import SteeringState
from steertui.tui.widgets.heatmap import Heatmap
from steertui.tui.worker_errors import ReportsWorkerErrors
from steertui.vectors.projections import layer_projections


class HeatmapPanel(ReportsWorkerErrors, VerticalScroll):
    def __init__(
        self,
        *,
        model: ModelSlot,
        steering: SteeringState,
        session: ChatSession,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id, can_focus=False)
        self.model = model
        self.steering = steering
        self.session = session
        self.focused_dim: str | None = None

    def compose(self) -> ComposeResult:
        yield Heatmap(id="heatmap")

    @property
    def heatmap(self) -> Heatmap:
        return self.query_one(Heatmap)

    def clear(self, note: str) -> None:
        self.heatmap.clear(note)

    def follow_active(self) -> None:
        """The knobs changed: keep the focused dimension if still active, else the first."""
        active = self.steering.active
        if self.focused_dim not in active:
            self.focused_dim = active[0] if active else None

    def focus_dimension(self, dimension: str) -> None:
        if dimension != self.focused_dim:
            self.focused_dim = dimension
            self.recompute()

    def vector_arrived(self, dimension: str) -> None:
        if dimension == self.focused_dim:
            self.recompute()

    def recompute(self) -> None:
        dim, last = self.focused_dim, self.session.last
        if last is None or dim is None or self.model.engine is None:
            return
        vector = self.steering.vectors.get(dim)
        if vector is None:
            self.heatmap.clear(f"{dim}: waiting for its vector.")
            return
        # a server's answer comes as text (the server reads its tokens again)
        remote = isinstance(self.model.engine, RemoteEngine)
        if not (last.token_ids or (remote and last.text.strip())):
            self.heatmap.clear("The last answer is empty.")
            return
        self._compute(dim, vector, last)

    @work(thread=True, exclusive=True, exit_on_error=False, group="heatmap")
    def _compute(self, dim: str, vector: VectorLike, last: LastAnswer) -> None:
        engine = self.model.engine
        assert engine is not None
        if isinstance(engine, RemoteEngine):
            try:
                values, texts = engine.layer_heatmap(dim, last.messages, last.text, last.plan)
            except SteertuiError as exc:  # the server refused, or is gone: said in the panel
                self.post_message(HeatmapReady(dim, [], [], note=f"No heatmap: {exc}"))
                return
            self.post_message(HeatmapReady(dim, values, [visible(t) for t in texts]))
            return
        prompt_ids = list(engine.chat_ids(last.messages))
        ids = prompt_ids + list(last.token_ids)
        plans = [last.plan] if last.plan is not None else None
        hidden = engine.capture([ids], plans=plans)[0]
        values = layer_projections(hidden, vector, start=len(prompt_ids))
        tokenizer = getattr(engine, "tokenizer", None)
        if tokenizer is None:
            tokens = [str(i) for i in last.token_ids]
        else:
            tokens = [visible(tokenizer.decode([i])) for i in last.token_ids]
        self.post_message(HeatmapReady(dim, values, tokens))

    def on_heatmap_ready(self, message: HeatmapReady) -> None:
        if message.dimension != self.focused_dim or not self.is_attached:
            return
        if message.note:
            self.heatmap.clear(message.note)
            return
        dim = self.steering.dimension(message.dimension)
        poles = (dim.negative, dim.positive) if dim is not None else ("-", "+")
        self.heatmap.show(message.dimension, message.values, message.tokens, poles)

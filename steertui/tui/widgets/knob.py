"""A float slider for one preference dimension, -100 ... +100, poles named at both ends.

Three lines, so nothing is cut in a narrow side panel: the dimension, its value and its
status; the track; the two poles under the track's ends.

Keyboard first: left/right adjust by 5, shift+left/right by 25, home/end jump to a pole,
0 resets; up/down move the focus to the neighbouring knob. The mouse sets the value by
clicking or dragging along the track.
"""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.reactive import reactive
from textual.widget import Widget

from steertui.prefs.knobs import KNOB_MAX, KNOB_MIN, clamp_knob
from steertui.tui.messages import KnobChanged, KnobFocused

STEP = 5.0
BIG_STEP = 25.0


class Knob(Widget, can_focus=True):
    """One dimension's knob. Posts `KnobChanged` when its value moves."""

    DEFAULT_CSS = """
    Knob {
        height: 3;
        width: 1fr;
        padding: 0 1;
        border-left: blank;
    }
    Knob:focus {
        background: $accent 20%;
        border-left: thick $accent;
    }
    Knob:focus > .knob--name {
        color: $accent;
    }
    Knob > .knob--track {
        color: $foreground-darken-3;
    }
    Knob > .knob--fill {
        color: $accent;
    }
    Knob > .knob--thumb {
        color: $text;
        text-style: bold;
    }
    Knob > .knob--pole {
        color: $text-muted;
    }
    Knob > .knob--name {
        text-style: bold;
    }
    """
    COMPONENT_CLASSES = {"knob--name", "knob--track", "knob--fill", "knob--thumb", "knob--pole"}
    BINDINGS = [
        Binding("left", "adjust(-5)", "-5", show=False, id="knob.down_5"),
        Binding("right", "adjust(5)", "+5", show=False, id="knob.up_5"),
        Binding("shift+left", "adjust(-25)", "-25", show=False, id="knob.down_25"),
        Binding("shift+right", "adjust(25)", "+25", show=False, id="knob.up_25"),
        Binding("home", "set_value(-100)", "Negative pole", show=False, id="knob.negative_pole"),
        Binding("end", "set_value(100)", "Positive pole", show=False, id="knob.positive_pole"),
        Binding("0", "set_value(0)", "Reset knob", show=False, id="knob.set_value_0"),
        Binding(
            "up", "app.focus_previous", "Previous knob", show=False, id="knob.app_focus_previous"
        ),
        Binding("down", "app.focus_next", "Next knob", show=False, id="knob.app_focus_next"),
    ]

    value: reactive[float] = reactive(0.0)
    status: reactive[str] = reactive("")

    def __init__(
        self,
        dimension: str,
        negative: str,
        positive: str,
        value: float = 0.0,
        *,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.dimension = dimension
        self.negative = negative
        self.positive = positive
        self.set_reactive(Knob.value, clamp_knob(value))
        self._dragging = False

    def watch_value(self, old: float, new: float) -> None:
        if old != new:
            self.post_message(KnobChanged(self.dimension, new))

    def action_adjust(self, delta: float) -> None:
        self.value = clamp_knob(self.value + delta)

    def action_set_value(self, value: float) -> None:
        self.value = clamp_knob(value)

    def set_quietly(self, value: float) -> None:
        """Show a value set by the app (a restored session) without posting `KnobChanged`."""
        self.set_reactive(Knob.value, clamp_knob(value))
        self.refresh()

    def on_focus(self) -> None:
        self.post_message(KnobFocused(self.dimension))

    # -- mouse ----------------------------------------------------------------------------
    def _value_at(self, x: int) -> float:
        width = max(2, self.content_size.width)
        span = KNOB_MAX - KNOB_MIN
        return clamp_knob(round((x / (width - 1) * span + KNOB_MIN) / STEP) * STEP)

    def on_mouse_down(self, event: events.MouseDown) -> None:
        self.focus()
        self._dragging = True
        self.capture_mouse()
        self.value = self._value_at(event.x - self.gutter.left)

    def on_mouse_move(self, event: events.MouseMove) -> None:
        if self._dragging:
            self.value = self._value_at(event.x - self.gutter.left)

    def on_mouse_up(self, event: events.MouseUp) -> None:
        self._dragging = False
        self.release_mouse()

    # -- drawing --------------------------------------------------------------------------
    def render(self) -> Text:
        width = max(10, self.content_size.width)
        pole = self.get_component_rich_style("knob--pole")
        name = self.get_component_rich_style("knob--name")
        top = Text(no_wrap=True, overflow="ellipsis")
        top.append(self.dimension, style=name)
        top.append(f" {self.value:+.0f}", style=name)
        if self.status:
            top.append(f" {self.status}")
        top.truncate(width, overflow="ellipsis")
        half = max(1, (width - 1) // 2)
        poles = Text(no_wrap=True)
        left, right = _fit(self.negative, half), _fit(self.positive, half)
        poles.append(left, style=pole)
        poles.append(" " * max(1, width - len(left) - len(right)))
        poles.append(right, style=pole)
        track = self.get_component_rich_style("knob--track")
        fill = self.get_component_rich_style("knob--fill")
        thumb_style = self.get_component_rich_style("knob--thumb")
        centre = (width - 1) / 2
        thumb = round((self.value - KNOB_MIN) / (KNOB_MAX - KNOB_MIN) * (width - 1))
        bar = Text(no_wrap=True)
        for x in range(width):
            if x == thumb:
                bar.append("●", style=thumb_style)
            elif min(thumb, centre) <= x <= max(thumb, centre):
                bar.append("━", style=fill)
            elif x == round(centre):
                bar.append("┼", style=track)
            else:
                bar.append("─", style=track)
        return Text("\n").join([top, bar, poles])


def _fit(label: str, room: int) -> str:
    """A pole's name in `room` cells: whole when it fits, else cut with an ellipsis."""
    return label if len(label) <= room else label[: max(0, room - 1)] + "…"

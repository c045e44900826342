"""A float slider for one preference dimension, -100 ... +100, poles named at both ends.

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

from steertui.prefs.knobs import clamp_knob
from steertui.tui.messages import KnobChanged, KnobFocused

STEP = 5.0
BIG_STEP = 25.0


class Knob(Widget, can_focus=True):
    """One dimension's knob. Posts `KnobChanged` when its value moves."""

    DEFAULT_CSS = """
    Knob {
        height: 2;
        width: 1fr;
        padding: 0 1;
    }
    Knob:focus {
        background: $boost;
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
    """
    COMPONENT_CLASSES = {"knob--track", "knob--fill", "knob--thumb", "knob--pole"}
    BINDINGS = [
        Binding("left", "adjust(-5)", "-5", show=False),
        Binding("right", "adjust(5)", "+5", show=False),
        Binding("shift+left", "adjust(-25)", "-25", show=False),
        Binding("shift+right", "adjust(25)", "+25", show=False),
        Binding("home", "set_value(-100)", "Negative pole", show=False),
        Binding("end", "set_value(100)", "Positive pole", show=False),
        Binding("0", "set_value(0)", "Reset knob", show=False),
        Binding("up", "app.focus_previous", "Previous knob", show=False),
        Binding("down", "app.focus_next", "Next knob", show=False),
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
        return clamp_knob(round((x / (width - 1) * 200.0 - 100.0) / STEP) * STEP)

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
        middle = f"{self.dimension} {self.value:+.0f}"
        if self.status:
            middle += f" {self.status}"
        room = max(0, width - len(middle) - 2)
        left_room, right_room = room // 2, room - room // 2
        top = Text(no_wrap=True, overflow="ellipsis")
        top.append(self.negative[:left_room].ljust(left_room), style=pole)
        top.append(" ")
        top.append(middle, style="bold")
        top.append(" ")
        top.append(self.positive[:right_room].rjust(right_room), style=pole)

        track = self.get_component_rich_style("knob--track")
        fill = self.get_component_rich_style("knob--fill")
        thumb_style = self.get_component_rich_style("knob--thumb")
        centre = (width - 1) / 2
        thumb = round((self.value + 100.0) / 200.0 * (width - 1))
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
        return Text("\n").join([top, bar])

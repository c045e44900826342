"""The conversation: user messages as plain text, answers as streaming Markdown.

User text is shown as `Content` (never parsed as markup); answers go through the Markdown
widget, which renders Markdown but never interprets Rich markup. Everything shown passes
through `visible` first, so an answer's escape sequences (OSC 0 title, OSC 52 clipboard,
clear screen) reach the terminal as harmless text; `.text` keeps the raw text that is stored.
The view is anchored to the bottom, so it follows a streaming answer only while the user has
not scrolled up.

While an answer streams, its fragments reach the Markdown widget at most `STREAM_INTERVAL`
apart: every append grows the answer, and a grown answer costs a layout and a repaint of the
whole chat, so appending at token rate (or the worker's 30 Hz) keeps the event loop busy and a
key press waits behind it. Textual's `MarkdownStream` then re-parses only the last block.
A key press comes first: an append due less than `KEY_FIRST` after one waits, so the frame
that shows the key's effect is not also laying out and repainting the chat (never more than
`MAX_HOLD` past its time, so a key held down does not stop the stream: it shows new text
at least once a second).
Blocks the stream has moved past, and a finished answer's blocks, fold into one `SettledLines`
widget (see `settled.py`): neither a long answer nor a long conversation makes each layout
pass longer.
"""

from __future__ import annotations

import asyncio
import time

from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.theme import Theme
from textual.timer import Timer
from textual.widgets import Markdown, Static
from textual.widgets.markdown import MarkdownBlock, MarkdownStream

from steertui.safe_text import visible
from steertui.tui.widgets.settled import SettledLines, fold_blocks

STREAM_INTERVAL = 0.1  # seconds between two appends to a streaming answer (10 per second)
FOLD_AT = 8  # a streaming answer with this many blocks folds all but the last `LIVE_BLOCKS`
LIVE_BLOCKS = 2  # the blocks a stream may still change (the last one grows, or splits in two)
KEY_FIRST = 0.05  # seconds after a key press in which no append is made
MAX_HOLD = 1.0  # the longest an append waits behind key presses (a key held down)


class KeyClock:
    """When the user last pressed a key (`time.monotonic()`); the app sets it, streaming
    answers read it."""

    def __init__(self) -> None:
        self.at = float("-inf")

    def pressed(self) -> None:
        self.at = time.monotonic()


class UserMessage(Static):
    """A message the user sent."""

    def __init__(self, text: str) -> None:
        super().__init__(Content(visible(text)), markup=False)
        self.text = text


class AnswerMessage(Vertical):
    """One answer: Markdown body streamed token by token, then a one-line footer."""

    def __init__(
        self,
        text: str = "",
        footer: str = "",
        *,
        id: str | None = None,
        keys: KeyClock | None = None,
    ) -> None:
        super().__init__(id=id)
        self.text = text
        self._keys = keys
        self._footer = footer
        self._stream: MarkdownStream | None = None
        self._pending: list[str] = []
        self._flush_timer: Timer | None = None
        self._last_flush = 0.0
        self._folding = False  # blocks were folded and the screen has not laid them out since
        self._drawn_width = 0  # the width folded lines were drawn at (0: none folded)
        self._drawing = asyncio.Lock()  # a redraw, a finish and a clear, one at a time

    def compose(self) -> ComposeResult:
        yield Markdown(visible(self.text))
        yield Static(Content(visible(self._footer)), classes="answer-footer", markup=False)

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, self._on_theme_changed)
        if self.text:
            self.call_after_refresh(self._fold, 1)

    @property
    def body(self) -> Markdown:
        return self.query_one(Markdown)

    async def clear(self) -> None:
        """Empty the answer, ready for a new one."""
        async with self._drawing:
            self.text = ""
            await self._unfold()
            await self.body.update("")

    def start_stream(self) -> None:
        self._stream = Markdown.get_stream(self.body)

    async def write(self, fragment: str) -> None:
        self.text += fragment
        if self._stream is None:
            return
        # per fragment: a sequence split across two fragments is harmless in both halves,
        # and `finish` renders the whole answer through `visible` once more
        self._pending.append(visible(fragment))
        if self._flush_timer is not None or self._drawing.locked():
            return  # an append is already due (or follows the redraw): this fragment goes too
        wait = self._append_at() - time.monotonic()
        if wait <= 0:
            await self._flush()
        else:
            self._flush_timer = self.set_timer(wait, self._flush)

    def _append_at(self) -> float:
        """When the pending fragments may be appended: `STREAM_INTERVAL` after the last
        append, and `KEY_FIRST` after the last key press (at most `MAX_HOLD` later)."""
        due = self._last_flush + STREAM_INTERVAL
        return max(due, min(self._after_key(), due + MAX_HOLD))

    def _after_key(self) -> float:
        """When the last key press's frame has had its `KEY_FIRST` to itself."""
        return float("-inf") if self._keys is None else self._keys.at + KEY_FIRST

    async def _flush(self) -> None:
        self._flush_timer = None
        if self._stream is None or not self._pending or self._drawing.locked():
            return
        wait = self._append_at() - time.monotonic()
        if wait > 0:  # a key was pressed since this append was planned
            self._flush_timer = self.set_timer(wait, self._flush)
            return
        chunk = "".join(self._pending)
        self._pending.clear()
        self._last_flush = time.monotonic()
        await self._stream.write(chunk)
        self.call_after_refresh(self._fold, LIVE_BLOCKS, FOLD_AT)

    async def finish(self, footer: str) -> None:
        """Stop streaming and render the whole answer once, so Markdown is parsed whole."""
        async with self._drawing:
            if self._flush_timer is not None:
                self._flush_timer.stop()
                self._flush_timer = None
            self._pending.clear()
            if self._stream is not None:
                await self._stream.stop()
                self._stream = None
            await self._unfold()
            await self.body.update(visible(self.text))
        self.set_footer(footer)
        self.call_after_refresh(self._fold, 1)

    # -- folding (see settled.py) ---------------------------------------------------------
    async def _fold(self, keep: int, at_least: int = 0) -> None:
        """Fold the answer's blocks but the last `keep` (when it has `at_least` blocks), one
        refresh after the last fold, so that every block folded is where the screen drew it."""
        body = self.body
        if self._folding or self._drawing.locked():
            return
        wait = self._after_key() - time.monotonic()
        if wait > 0:  # a key's frame comes first
            self.set_timer(wait, lambda: self._fold(keep, at_least))
            return
        async with body.lock:
            blocks = [child for child in body.children if isinstance(child, MarkdownBlock)]
            if len(blocks) < at_least:
                return
            folded = await fold_blocks(body, keep)
            if not folded:
                return
            self._folding = True
            self._drawn_width = self.size.width
            await body.remove_children(folded)
        self.call_after_refresh(self._folded)

    def _folded(self) -> None:
        self._folding = False

    async def _unfold(self) -> None:
        self._drawn_width = 0
        async with self.body.lock:
            await self.body.query_children(SettledLines).remove()

    def on_resize(self, event: events.Resize) -> None:
        if self._drawn_width and event.size.width != self._drawn_width:
            self.run_worker(self._draw_again(), group="redraw")

    def _on_theme_changed(self, theme: Theme) -> None:
        if self._drawn_width:
            self.run_worker(self._draw_again(), group="redraw")

    async def _draw_again(self) -> None:
        """Folded lines hold the width and colours they were drawn with: draw them anew. A
        stream is stopped first (its queued appends land) and started again after."""
        async with self._drawing:
            if not self._drawn_width:
                return  # drawn anew already (a finish, a clear, an earlier redraw)
            streaming = self._stream is not None
            if self._stream is not None:
                await self._stream.stop()
            await self._unfold()
            await self.body.update(self.body.source)
            if streaming:
                self._stream = Markdown.get_stream(self.body)
        if streaming:
            await self._flush()
            self.call_after_refresh(self._fold, LIVE_BLOCKS, FOLD_AT)
        else:
            self.call_after_refresh(self._fold, 1)

    @property
    def footer(self) -> str:
        """The line under the answer (streaming, then its figures)."""
        return self._footer

    def set_footer(self, footer: str) -> None:
        self._footer = footer
        self.query_one(".answer-footer", Static).update(Content(visible(footer)))


class ChatView(VerticalScroll):
    """The scrolling list of messages. `keys`: the app's clock of key presses, which its
    streaming answers give way to (see `KEY_FIRST`)."""

    can_focus = True

    def __init__(self, *, keys: KeyClock | None = None, id: str | None = None) -> None:
        super().__init__(id=id)
        self.keys = keys

    def on_mount(self) -> None:
        self.anchor()

    async def add_user(self, text: str) -> UserMessage:
        message = UserMessage(text)
        await self.mount(message)
        return message

    async def add_answer(self, text: str = "", footer: str = "") -> AnswerMessage:
        answer = AnswerMessage(text, footer, keys=self.keys)
        await self.mount(answer)
        return answer

    def last_answer(self) -> AnswerMessage | None:
        answers = self.query(AnswerMessage)
        return answers.last() if answers else None

    def last_user(self) -> UserMessage | None:
        users = self.query(UserMessage)
        return users.last() if users else None

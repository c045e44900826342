"""The conversation: user messages as plain text, answers as streaming Markdown.

User text is shown as `Content` (never parsed as markup); answers go through the Markdown
widget, which renders Markdown but never interprets Rich markup. Everything shown passes
through `visible` first, so an answer's escape sequences (OSC 0 title, OSC 52 clipboard,
clear screen) reach the terminal as harmless text; `.text` keeps the raw text that is stored.
The view is anchored to the bottom, so it follows a streaming answer only while the user has
not scrolled up.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import Markdown, Static
from textual.widgets.markdown import MarkdownStream

from steertui.safe_text import visible


class UserMessage(Static):
    """A message the user sent."""

    def __init__(self, text: str) -> None:
        super().__init__(Content(visible(text)), markup=False)
        self.text = text


class AnswerMessage(Vertical):
    """One answer: Markdown body streamed token by token, then a one-line footer."""

    def __init__(self, text: str = "", footer: str = "", *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.text = text
        self._footer = footer
        self._stream: MarkdownStream | None = None

    def compose(self) -> ComposeResult:
        yield Markdown(visible(self.text))
        yield Static(Content(visible(self._footer)), classes="answer-footer", markup=False)

    @property
    def body(self) -> Markdown:
        return self.query_one(Markdown)

    def start_stream(self) -> None:
        self._stream = Markdown.get_stream(self.body)

    async def write(self, fragment: str) -> None:
        self.text += fragment
        if self._stream is not None:
            # per fragment: a sequence split across two fragments is harmless in both halves,
            # and `finish` renders the whole answer through `visible` once more
            await self._stream.write(visible(fragment))

    async def finish(self, footer: str) -> None:
        """Stop streaming and render the whole answer once, so Markdown is parsed whole."""
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None
        await self.body.update(visible(self.text))
        self.set_footer(footer)

    def set_footer(self, footer: str) -> None:
        self._footer = footer
        self.query_one(".answer-footer", Static).update(Content(visible(footer)))


class ChatView(VerticalScroll):
    """The scrolling list of messages."""

    can_focus = True

    def on_mount(self) -> None:
        self.anchor()

    async def add_user(self, text: str) -> UserMessage:
        message = UserMessage(text)
        await self.mount(message)
        return message

    async def add_answer(self, text: str = "", footer: str = "") -> AnswerMessage:
        answer = AnswerMessage(text, footer)
        await self.mount(answer)
        return answer

    def last_answer(self) -> AnswerMessage | None:
        answers = self.query(AnswerMessage)
        return answers.last() if answers else None

    def last_user(self) -> UserMessage | None:
        users = self.query(UserMessage)
        return users.last() if users else None

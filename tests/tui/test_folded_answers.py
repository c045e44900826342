"""A long answer's finished blocks fold into one widget and the screen looks the same.

Every layout pass walks every widget, so an answer of a hundred Markdown blocks made each
streamed append slow and a key press wait. Folded, the answer is a few widgets; these tests
check that a user sees exactly what the unfolded answer showed (streaming, through a resize,
finished, after a resize and a theme change), that links still open and selected text still
copies.
"""

from __future__ import annotations

import pytest
from textual.app import App, ComposeResult
from textual.widgets import Input

from steertui.tui.widgets import chat_view
from steertui.tui.widgets.chat_view import ChatView
from steertui.tui.widgets.settled import SettledLines
from tests.tui.pilot import aio

STYLESHEET = "../../steertui/tui/app.tcss"


def _part(i: int) -> str:
    part = f"## Part {i}\n\nThe **tasting menu** pairs well with a *quiet* table, number {i}."
    if i % 3 == 0:
        part += "\n\n- one item\n- two *items*\n  - nested"
    if i % 4 == 1:
        part += "\n\n> a quote long enough to wrap across the line at this width, for sure, yes"
    if i % 5 == 2:
        part += "\n\n```python\nprint('hi')\nx = 1\n```"
    if i % 7 == 3:
        part += "\n\n| a | b |\n|---|---|\n| 1 | 2 |"
    return part


WIDE = "```\n" + "wide " * 40 + "\n```"
# headings, paragraphs, nested lists, quotes, fences, tables, fences wider than the view (they
# scroll, so they stay live blocks between folded runs)
DOC = "\n\n".join(
    [_part(i) for i in range(12)] + [WIDE] + [_part(i) for i in range(12, 24)] + [WIDE, "The end."]
)


class ChatOnly(App[None]):
    CSS_PATH = STYLESHEET

    def compose(self) -> ComposeResult:
        yield ChatView(id="chat")
        yield Input(id="prompt")


Cells = list[list[tuple[str, str]]]


def _chat_cells(app: App[None]) -> Cells:
    """Every cell the chat shows (scrollbar aside): its character and its style."""
    box = app.query_one(ChatView).scrollable_content_region
    lines = app.screen._compositor.render_strips()
    return [
        [
            (char, str(segment.style.clear_meta_and_links() if segment.style else ""))
            for segment in line.crop(box.x, box.right)
            for char in segment.text
        ]
        for line in lines[box.y : box.bottom]
    ]


async def _screens(fold: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[list[Cells], list[int]]:
    """What the user sees at each step, and how many widgets the answer's body holds."""
    if not fold:

        async def never(body: object, keep: int) -> list[object]:
            return []

        monkeypatch.setattr(chat_view, "fold_blocks", never)
    app = ChatOnly()
    shots, counts = [], []
    async with app.run_test(size=(100, 40)) as pilot:
        chat = app.query_one(ChatView)
        answer = await chat.add_answer()
        answer.start_stream()
        for start in range(0, len(DOC), 40):
            await answer.write(DOC[start : start + 40])
            await pilot.pause(0.01)
            if start == 40 * 50:  # the terminal narrows while the answer streams
                await pilot.resize_terminal(90, 40)
        await pilot.pause(0.5)
        shots.append(_chat_cells(app))
        counts.append(len(answer.body.children))
        await answer.finish("footer")
        await pilot.pause(0.5)
        chat.focus()
        await pilot.pause(0.3)
        shots.append(_chat_cells(app))
        counts.append(len(answer.body.children))
        await pilot.resize_terminal(80, 30)
        await pilot.pause(1.0)
        shots.append(_chat_cells(app))
        app.theme = "textual-light"
        await pilot.pause(1.0)
        shots.append(_chat_cells(app))
    return shots, counts


@aio
async def test_a_long_answer_looks_the_same_folded(monkeypatch: pytest.MonkeyPatch) -> None:
    folded, counts = await _screens(True, monkeypatch)
    plain, plain_counts = await _screens(False, monkeypatch)
    for step, (mine, reference) in enumerate(zip(folded, plain, strict=True)):
        assert len(mine) > 20
        assert mine == reference, f"step {step} differs from the unfolded answer"
    assert plain_counts[0] > 60
    assert counts[0] <= chat_view.FOLD_AT + 1  # while streaming: folded lines and live blocks
    assert counts[1] <= 5  # finished: folded runs around the wide fences, and the last block


@aio
async def test_folded_lines_keep_links_and_copy_as_text() -> None:
    opened: list[str] = []
    app = ChatOnly()
    app.open_url = lambda url, **kwargs: opened.append(url)  # type: ignore[method-assign]
    text = "\n\n".join(
        ["See [the menu](https://example.com/menu) first."]
        + [f"Paragraph {i} about dinner." for i in range(12)]
    )
    async with app.run_test(size=(100, 60)) as pilot:
        chat = app.query_one(ChatView)
        answer = await chat.add_answer(text, "footer")
        await pilot.pause(0.5)
        settled = answer.body.query_one(SettledLines)
        row = next(y for y, strip in enumerate(settled.strips) if "the menu" in strip.text)
        column = settled.strips[row].text.index("the menu")
        await pilot.click(offset=settled.region.offset + (column + 2, row))
        await pilot.pause(0.2)
        assert opened == ["https://example.com/menu"]
        settled.text_select_all()
        await pilot.pause(0.1)
        copied = app.screen.get_selected_text() or ""
        assert "See the menu first." in copied
        assert "Paragraph 10 about dinner." in copied

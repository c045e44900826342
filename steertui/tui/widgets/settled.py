"""Markdown blocks that no longer change, kept as the lines they drew.

Textual lays out every widget of a screen on each layout pass, and a Markdown answer is one
widget per block (paragraph, list, fence), so a long answer made every pass (and each streamed
append triggers one) longer: a key press waited behind it. `fold_blocks` replaces runs of
finished blocks with one `SettledLines` widget holding the lines the screen last drew for them,
the blank rows between them included, so the screen looks the same with a few widgets.

Lines keep their colours and links; mouse selection works on them as plain text. What cannot
be kept still is left as it is: a block that scrolls (a code fence wider than the view). The
lines hold the width and theme they were drawn at: the owner draws the answer again on a
change of either (`AnswerMessage` does).
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.segment import Segment
from rich.style import Style
from textual.errors import NoWidget
from textual.geometry import Region, Size
from textual.selection import Selection
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Markdown
from textual.widgets.markdown import MarkdownBlock


class SettledLines(Widget):
    """Finished Markdown blocks as drawn lines: one widget however many blocks it holds."""

    DEFAULT_CSS = "SettledLines { height: auto; }"

    def __init__(self, strips: Sequence[Strip]) -> None:
        super().__init__()
        self.strips: list[Strip] = []
        self._add(strips)

    def _add(self, strips: Sequence[Strip]) -> None:
        row = len(self.strips)
        # the offsets let a mouse selection say where it is in these lines
        self.strips.extend(strip.apply_offsets(0, row + i) for i, strip in enumerate(strips))

    def extend(self, strips: Sequence[Strip]) -> None:
        self._add(strips)
        self.refresh(layout=True)

    @property
    def text(self) -> str:
        return "\n".join(strip.text.rstrip() for strip in self.strips)

    @property
    def select_container(self) -> Widget:
        return self.query_ancestor(Markdown)  # a selection runs on into the live blocks

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self.strips)

    def render_line(self, y: int) -> Strip:
        if not 0 <= y < len(self.strips):
            return Strip.blank(self.size.width)
        strip = self.strips[y]
        selection = self.text_selection
        span = None if selection is None else selection.get_span(y)
        if span is None:
            return strip
        start, end = span
        end = strip.cell_length if end == -1 else end
        style = self.screen.get_component_rich_style("screen--selection")
        return Strip.join(
            [
                strip.crop(0, start),
                Strip(
                    Segment.apply_style(strip.crop(start, end), post_style=style),
                    end - start,
                ),
                strip.crop(end),
            ]
        )

    def get_selection(self, selection: Selection) -> tuple[str, str] | None:
        return selection.extract(self.text), "\n"

    async def action_link(self, href: str) -> None:
        """A link in the settled lines was clicked: what a live block would have said."""
        self.post_message(Markdown.LinkClicked(self.query_ancestor(Markdown), href))


def _draws_still(widget: Widget) -> bool:
    """Whether `widget` and everything in it shows all it has (nothing scrolls)."""
    if widget.is_scrollable and (widget.max_scroll_x > 0 or widget.max_scroll_y > 0):
        return False
    return all(_draws_still(child) for child in widget.children if child.display)


def _draw(widget: Widget) -> list[Strip]:
    """The lines `widget` shows, its children drawn over it where the screen placed them."""
    screen = widget.screen
    region = screen.find_widget(widget).region
    lines = widget.render_lines(Region(0, 0, region.width, region.height))
    for child in widget.children:
        if not child.display:
            continue
        place = screen.find_widget(child).region
        dx, dy = place.x - region.x, place.y - region.y
        room = max(0, region.width - dx)
        for i, line in enumerate(_draw(child)):
            y = dy + i
            if 0 <= y < len(lines) and room:
                under = lines[y]
                piece = line.crop(0, room)
                lines[y] = Strip.join(
                    [under.crop(0, dx), piece, under.crop(dx + piece.cell_length)]
                )
    return lines


async def fold_blocks(body: Markdown, keep: int) -> list[MarkdownBlock]:
    """Fold `body`'s blocks but the last `keep` into `SettledLines` (extending the one just
    above a run, else mounting one in its place) and return the blocks folded, for the caller
    to remove. Call it with the Markdown's lock held, right after a screen refresh: it reads
    where the screen last placed each block, and folds nothing if one is not placed yet."""
    children = list(body.children)
    blocks = [child for child in children if isinstance(child, MarkdownBlock)]
    if len(blocks) <= keep:
        return []
    # the last block kept: at most the `keep`th from the end, and placed by the last layout
    # with everything above it (a block the stream changed since sits above unplaced ones)
    limit = children.index(blocks[len(blocks) - keep])
    placed = 0
    for child in children[: limit + 1]:
        try:
            body.screen.find_widget(child)
        except NoWidget:
            break
        placed += 1
    kept = [i for i, child in enumerate(children[:placed]) if isinstance(child, MarkdownBlock)]
    if not kept:
        return []
    try:
        runs = _plan(body, children[: kept[-1] + 1])
    except NoWidget:  # a block newer than the screen's last layout
        return []
    folded: list[MarkdownBlock] = []
    for before, run, strips in runs:
        if isinstance(before, SettledLines):
            before.extend(strips)
        else:
            await body.mount(SettledLines(strips), before=run[0])
        folded.extend(run)
    return folded


def _plan(
    body: Markdown, children: list[Widget]
) -> list[tuple[Widget | None, list[MarkdownBlock], list[Strip]]]:
    """The runs of blocks to fold among `children` (the last one is kept), each with the widget
    above it and the lines that replace it."""
    content = body.content_region
    blank = Style(bgcolor=body.background_colors[1].rich_color)
    width = content.width
    runs = []
    index = 0
    last = len(children) - 1
    while index < last:
        run_end = index
        while (
            run_end < last
            and isinstance(block := children[run_end], MarkdownBlock)
            and _draws_still(block)
        ):
            run_end += 1
        if run_end == index:
            index += 1
            continue
        run = [child for child in children[index:run_end] if isinstance(child, MarkdownBlock)]
        before = children[index - 1] if index else None
        after = children[run_end]
        above = before.styles.margin.bottom if isinstance(before, MarkdownBlock) else 0
        top = run[0].region.y - content.y - max(above, run[0].styles.margin.top) + above
        until = after.region.y - content.y - after.styles.margin.top
        drawn: dict[int, Strip] = {}
        for block in run:
            place = block.region
            dx = place.x - content.x
            left = Strip.blank(dx, blank)
            right = Strip.blank(max(0, width - dx - place.width), blank)
            for i, line in enumerate(_draw(block)):
                drawn[place.y - content.y + i] = Strip.join([left, line, right])
        strips = [drawn.get(y) or Strip.blank(width, blank) for y in range(top, until)]
        runs.append((before, run, strips))
        index = run_end
    return runs

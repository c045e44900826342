"""Incremental detokenization of a batch: each row's new text per token, linear in the length.

Re-decoding a row's whole text at every token is quadratic. Instead each row decodes a short
window: the tokens since the last emitted text's start (`prefix`) with and without the new token,
and emits the difference. The window keeps one piece of context before the new token, so a
SentencePiece word's leading space and a byte-level BPE space survive, and it grows only while
the text ends in an incomplete UTF-8 character (held back until the character is whole). The
text emitted adds up to the row's whole decoded text. One tokenizer call decodes every row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

_INCOMPLETE = "\ufffd"


def _batch_decoder(tokenizer: Any) -> Callable[[list[list[int]]], list[str]]:
    """One call that decodes many windows: the Rust tokenizer's `decode_batch` where the
    Python `decode` would only wrap it (no clean-up of spaces), else `batch_decode`."""
    backend: Any = getattr(tokenizer, "_tokenizer", None)
    if hasattr(backend, "decode_batch") and not getattr(
        tokenizer, "clean_up_tokenization_spaces", True
    ):
        return lambda windows: list(backend.decode_batch(windows, skip_special_tokens=True))
    return lambda windows: list(tokenizer.batch_decode(windows, skip_special_tokens=True))


class Detokenizer:
    """The text of every row of a batch, fed one token per row at a time."""

    def __init__(self, tokenizer: Any, batch: int) -> None:
        self.tokenizer = tokenizer
        self.ids: list[list[int]] = [[] for _ in range(batch)]
        self._prefix = [0] * batch  # window start: the token where the last emitted piece began
        self._read = [0] * batch  # tokens before this index have been emitted
        self._prefix_text: list[str | None] = [""] * batch  # decode(ids[prefix:read]), cached
        self._decode_batch = _batch_decoder(tokenizer)

    def push(self, pairs: Sequence[tuple[int, int]]) -> list[str]:
        """Append `token` to `row` for each `(row, token)`; the new text of each, in order
        (empty while a character is incomplete)."""
        windows: list[list[int]] = []
        for row, token in pairs:
            ids = self.ids[row]
            ids.append(token)
            if self._prefix_text[row] is None:
                windows.append(ids[self._prefix[row] : self._read[row]])
            windows.append(ids[self._prefix[row] :])
        decoded = iter(self._decode_batch(windows))
        out: list[str] = []
        for row, _ in pairs:
            prefix_text = self._prefix_text[row]
            if prefix_text is None:
                prefix_text = next(decoded)
                self._prefix_text[row] = prefix_text
            text = next(decoded)
            if (
                len(text) > len(prefix_text)
                and not text.endswith(_INCOMPLETE)
                and text.startswith(prefix_text)
            ):
                out.append(text[len(prefix_text) :])
                self._prefix[row] = self._read[row]
                self._read[row] = len(self.ids[row])
                self._prefix_text[row] = None  # decoded with the next token, in the same call
            else:
                out.append("")
        return out


def decode_rows(tokenizer: Any, rows: Sequence[Sequence[int]]) -> list[str]:
    """Each row's whole text, in one call: what `Detokenizer` emits for it, added up (an
    incomplete character at the end is left out, as the stream holds it back)."""
    if not rows:
        return []
    return [text.rstrip(_INCOMPLETE) for text in _batch_decoder(tokenizer)([list(r) for r in rows])]

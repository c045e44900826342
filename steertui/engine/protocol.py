"""The engine's API as Protocols: what the app, the search and the test fakes type against.

`Engine` satisfies them; so must any fake, and the app's remote engine
(`tui/remote_engine.py`, a `steertui serve` over HTTP). `ChatEngine` is the part the chat app uses
(stream, compile, capture, the chat template); `SteeringHandle` is a compiled plan whose
coefficients can be moved while a stream runs.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # types only: importing this module must not load torch
    import torch

    from steertui.engine.lock import Priority
    from steertui.engine.sampling import SamplingParams

ChatMessage = Mapping[str, str]
ChatPrompt = str | Sequence[ChatMessage]


class GuardLike(Protocol):
    """What the coherence guard did to a row (`engine.guard.GuardRecord`, or a server's record
    of it for a remote engine)."""

    @property
    def acted(self) -> bool: ...

    def to_dict(self, c_max: Mapping[str, float] | None = None) -> dict[str, Any]: ...


class StreamEvent(Protocol):
    """One row's new text; the last event of a row carries its finish reason."""

    @property
    def row(self) -> int: ...

    @property
    def token_id(self) -> int | None: ...

    @property
    def text(self) -> str: ...

    @property
    def finish_reason(self) -> str | None: ...

    @property
    def guard(self) -> GuardLike | None:
        """On a row's last event: what the coherence guard did to it (None: not watched)."""
        ...


class SteeringHandle(Protocol):
    """A compiled plan: its named coefficients change in place, the next token uses them."""

    def set_coeff(self, row: int, name: str, value: float) -> None: ...


@runtime_checkable
class ChatEngine(Protocol):
    """What the chat app needs of an engine."""

    @property
    def model_id(self) -> str: ...

    @property
    def device(self) -> torch.device: ...

    @property
    def dtype(self) -> torch.dtype: ...

    @property
    def n_layers(self) -> int: ...

    tokenizer: Any  # a transformers tokenizer: its API is not typed
    fast: bool  # decoding through the compiled step (`--compile`)

    def chat_ids(
        self, messages: Sequence[ChatMessage], add_generation_prompt: bool = True
    ) -> list[int]: ...

    def compile(self, plans: Any, batch_size: int) -> SteeringHandle | None: ...

    def stream(
        self,
        prompts: Any,
        plans: Any = None,
        sampling: SamplingParams | None = None,
        cancel: threading.Event | None = None,
        priority: Priority = "chat",
        row_seeds: Sequence[int | None] | None = None,
    ) -> Iterator[StreamEvent]: ...

    def capture(
        self,
        token_rows: Sequence[Sequence[int]],
        plans: Any = None,
        layers: Sequence[int] | None = None,
        prompt_lens: Sequence[int] | None = None,
        priority: Priority = "chat",
    ) -> list[torch.Tensor]: ...

    def take_notices(self) -> list[str]: ...

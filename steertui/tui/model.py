"""The loaded model as the app owns it, headless: its name, its state (loading, ready, failed),
the engine and the sampling answers use. Only the app changes it (`loading`, `ready`, `failed`);
the chat's parts read it, so there is one copy of each, never a mirror.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from steertui.tui.chat_settings import ChatSettings, chat_sampling

if TYPE_CHECKING:
    from steertui.engine.protocol import ChatEngine
    from steertui.engine.sampling import SamplingParams
    from steertui.engine.sampling_defaults import ResolvedSampling

ModelState = Literal["loading", "ready", "failed"]


@dataclass
class ModelSlot:
    name: str
    state: ModelState = "loading"
    engine: ChatEngine | None = None
    sampling: SamplingParams | None = None

    @property
    def ready(self) -> bool:
        return self.state == "ready" and self.engine is not None

    def loading(self, name: str) -> None:
        self.name, self.state = name, "loading"

    def failed(self) -> None:
        self.state = "failed"

    def loaded(self, engine: ChatEngine, settings: ChatSettings) -> None:
        """The engine is ready; an explicit sampling (tests, the CLI) wins over the settings."""
        self.engine, self.state = engine, "ready"
        if self.sampling is None:
            self.sampling = sampling_for(settings, engine=engine)

    def use_settings(self, settings: ChatSettings) -> SamplingParams:
        """The settings changed: answers sample as they say from now on."""
        self.sampling = sampling_for(settings, self.sampling, self.engine)
        return self.sampling


def sampling_for(
    settings: ChatSettings, current: SamplingParams | None = None, engine: object = None
) -> SamplingParams:
    """The sampling the settings ask for over `engine`'s model defaults (top-p and the rest
    kept from `current`)."""
    return resolved_sampling(settings, current, engine).params


def resolved_sampling(
    settings: ChatSettings, current: SamplingParams | None, engine: object
) -> ResolvedSampling:
    """`sampling_for` with where each value came from (the settings dialog says it)."""
    from steertui.engine.sampling_defaults import defaults_of

    return chat_sampling(settings, defaults_of(engine), current)

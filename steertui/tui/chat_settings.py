"""The chat's own settings, kept in the home between launches: the knobs picked (Ctrl+B), the
sampling (temperature, max new tokens, seed) and a system prompt. Headless; one small JSON file
written atomically, so a crash never leaves half of it.

`chat_sampling` lays the settings over the model's own sampling defaults
(`engine.sampling_defaults`): a value the user set wins, an empty one is the model's default,
and each value keeps where it came from, for the settings dialog to say."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steertui.errors import ConfigError
from steertui.files import write_atomic

if TYPE_CHECKING:
    from steertui.engine.sampling import SamplingParams
    from steertui.engine.sampling_defaults import ResolvedSampling, SamplingDefaults

FILE_NAME = "chat.json"
MAX_NEW_TOKENS_LIMIT = 8192
SEED_LIMIT = 2**63 - 1


@dataclass(frozen=True)
class ChatSettings:
    dimensions: tuple[str, ...] | None = None  # None: the profile's, else the first few
    temperature: float | None = None  # None: the model's default (`chat_sampling`)
    max_new_tokens: int | None = None
    seed: int | None = None  # None: random
    system_prompt: str = ""

    def with_text(self, **fields: str) -> ChatSettings:
        """These settings with fields typed by a user; a bad value raises one clear line."""
        values: dict[str, Any] = {}
        for name, text in fields.items():
            text = text.strip()
            if name in ("temperature", "max_new_tokens", "seed") and not text:
                values[name] = None
            elif name == "temperature":
                values[name] = _number(name, text, 0.0, 5.0)
            elif name == "max_new_tokens":
                values[name] = int(_number(name, text, 1, MAX_NEW_TOKENS_LIMIT, integer=True))
            elif name == "seed":
                values[name] = (
                    None if not text else int(_number(name, text, 0, SEED_LIMIT, integer=True))
                )
            elif name == "system_prompt":
                values[name] = text
            else:
                raise ConfigError(f"chat setting {name!r} is unknown")
        return replace(self, **values)

    def to_json(self) -> str:
        data = asdict(self)
        data["dimensions"] = list(self.dimensions) if self.dimensions is not None else None
        return json.dumps(data, indent=2)


def _number(name: str, text: str, low: float, high: float, integer: bool = False) -> float:
    kind = "a whole number" if integer else "a number"
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        raise ConfigError(f"{name.replace('_', ' ')} {text!r}: expected {kind}") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise ConfigError(
            f"{name.replace('_', ' ')} {text!r}: expected {kind} from {low:g} to {high:g}"
        )
    return value


def chat_sampling(
    settings: ChatSettings,
    defaults: SamplingDefaults | None = None,
    current: SamplingParams | None = None,
) -> ResolvedSampling:
    """The sampling `settings` ask for over the model's `defaults` (steertui's when None): the
    temperature, max new tokens and seed a user set win; the rest (top-p, top-k, repetition
    penalty) are the model's defaults, or kept from `current` (a sampling the app was handed)."""
    from steertui.engine.sampling_defaults import USER, sampling_defaults

    base = defaults if defaults is not None else sampling_defaults("")
    kept: dict[str, Any] = {}
    if current is not None:
        kept = {
            name: getattr(current, name)
            for name in ("top_p", "top_k", "repetition_penalty", "ignore_eos")
        }
    user = {
        "temperature": settings.temperature,
        "max_new_tokens": settings.max_new_tokens,
        "seed": settings.seed,
    }
    return base.params(user, USER, **kept)


def load_settings(home_root: Path) -> ChatSettings:
    """The saved settings; defaults when there are none or the file is not ours (it is then
    left alone and overwritten only by the next save)."""
    path = home_root / FILE_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ChatSettings()
    if not isinstance(data, dict):
        return ChatSettings()
    settings = ChatSettings()
    dims = data.get("dimensions")
    if isinstance(dims, list) and all(isinstance(d, str) for d in dims):
        settings = replace(settings, dimensions=tuple(dims))
    typed = {
        k: str(data[k])
        for k in ("temperature", "max_new_tokens", "seed", "system_prompt")
        if isinstance(data.get(k), int | float | str) and not isinstance(data.get(k), bool)
    }
    try:
        return settings.with_text(**typed)
    except ConfigError:
        return settings


def save_settings(home_root: Path, settings: ChatSettings) -> None:
    write_atomic(home_root / FILE_NAME, settings.to_json() + "\n")


__all__ = ["ChatSettings", "chat_sampling", "load_settings", "save_settings"]

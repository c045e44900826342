"""Request bodies read and checked: each mistake is an `ApiError` naming its field.

Steering rides in the body (the `openai` client's `extra_body`) under `steering`: every key is
a dimension's knob on the -100..100 scale, except four reserved ones: `vectors` (raw vectors,
each `{"layer", "coeff", "text" | "vector", "schedule"?}`: a text's own vector or a dimension's
built vector at one layer, the coefficient in DESIGN.md's unit, as `generate --text/--vector`),
`positions` (`all` or `generated`), `method` (how every vector pushes: add, clamp, rotate or
adaptive, as `generate --steer-method`) and `guard` (the coherence guard, a boolean, on by
default as in `generate`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from steertui.engine.methods import METHODS
from steertui.errors import SteertuiError
from steertui.serve.errors import ApiError
from steertui.validation import MAX_NEW_TOKENS, SEED_MAX, integer, knob, number

if TYPE_CHECKING:
    from starlette.requests import Request

MAX_BODY = 4 * 1024 * 1024

RESERVED = ("vectors", "positions", "method", "guard")
SCHEDULES = ("constant", "decay", "cosine", "warmup")  # search.space.SCHEDULE_KINDS
MAX_VECTORS = 16
MAX_TEXT = 2000  # characters of a text vector's text
MAX_PROMPT_CHARS = 1_000_000
T = TypeVar("T")


@dataclass(frozen=True)
class RawVector:
    """One raw vector: a text's own vector or a dimension's vector, at one layer."""

    layer: int
    coeff: float
    source: str
    kind: Literal["text", "dimension"]
    schedule: str = "constant"


@dataclass(frozen=True)
class Steering:
    knobs: dict[str, float] = field(default_factory=dict)
    vectors: tuple[RawVector, ...] | None = None  # None: not given
    positions: str | None = None
    options: dict[str, Any] = field(default_factory=dict)  # method, guard: as sent

    def over(self, base: Steering | None) -> Steering:
        """This steering applied on top of `base` (the server's default): per dimension this
        one's knob wins; raw vectors add up; positions and options are this one's if given."""
        if base is None:
            return self
        return Steering(
            knobs={**base.knobs, **self.knobs},
            vectors=(base.vectors or ()) + (self.vectors or ()),
            positions=self.positions if self.positions is not None else base.positions,
            options={**base.options, **self.options},
        )

    def changed_by(self, change: Steering) -> Steering:
        """A running stream's steering after `change`: knobs per dimension, the vectors list
        replaced where given, positions and options where given."""
        return Steering(
            knobs={**self.knobs, **change.knobs},
            vectors=change.vectors if change.vectors is not None else self.vectors,
            positions=change.positions if change.positions is not None else self.positions,
            options={**self.options, **change.options},
        )

    def to_dict(self) -> dict[str, Any]:
        """As a response shows it (the body's own shape)."""
        out: dict[str, Any] = dict(self.knobs)
        if self.vectors:
            out["vectors"] = [
                {
                    "layer": v.layer,
                    "coeff": v.coeff,
                    ("text" if v.kind == "text" else "vector"): v.source,
                    "schedule": v.schedule,
                }
                for v in self.vectors
            ]
        out["positions"] = self.positions or "all"
        out.update(self.options)
        return out


@dataclass(frozen=True)
class GenRequest:
    model: str
    chat: bool
    messages: list[dict[str, str]] | None = None
    prompt: str | None = None
    max_tokens: int | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stream: bool = False
    include_usage: bool = False  # stream_options.include_usage: a last chunk with the usage
    ignore_eos: bool = False  # vLLM's extra: always generate max_tokens (benchmarks, tests)
    steering: Steering | None = None


class ApiErrorKind(SteertuiError):
    """The kind `validation` raises here; `_checked` turns it into an `ApiError`."""


def _checked(param: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`fn(*args, **kwargs)` (a `validation` check), its refusal an `ApiError` on `param`."""
    try:
        return fn(*args, error=ApiErrorKind, **kwargs)
    except SteertuiError as exc:
        raise ApiError(str(exc), param) from None


def parse_json(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ApiError(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(f"the request body must be a JSON object, got {type(data).__name__}")
    return data


def _string(value: Any, param: str, limit: int) -> str:
    if not isinstance(value, str):
        raise ApiError(f"{param}: expected a string, got {type(value).__name__}", param)
    if len(value) > limit:
        raise ApiError(f"{param}: expected at most {limit} characters, got {len(value)}", param)
    return value


def _messages(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise ApiError("messages: expected a non-empty list of {role, content}", "messages")
    out: list[dict[str, str]] = []
    for i, item in enumerate(value):
        where = f"messages[{i}]"
        if not isinstance(item, Mapping):
            raise ApiError(f"{where}: expected an object with role and content", where)
        role = item.get("role")
        if role not in ("system", "user", "assistant", "developer"):
            raise ApiError(
                f"{where}.role: expected system, user, assistant or developer, got {role!r:.40}",
                f"{where}.role",
            )
        content = item.get("content")
        if isinstance(content, list):  # content parts: text ones only
            texts = []
            for j, part in enumerate(content):
                if not isinstance(part, Mapping) or part.get("type") != "text":
                    raise ApiError(
                        f"{where}.content[{j}]: expected a text part; this server reads text only",
                        f"{where}.content",
                    )
                texts.append(
                    _string(part.get("text"), f"{where}.content[{j}].text", MAX_PROMPT_CHARS)
                )
            content = "".join(texts)
        text = _string(content, f"{where}.content", MAX_PROMPT_CHARS)
        out.append({"role": "system" if role == "developer" else str(role), "content": text})
    return out


def parse_steering(value: Any, n_layers: int, param: str = "steering") -> Steering | None:
    """A request's `steering` object (None when absent or null)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ApiError(f"{param}: expected an object of dimension knobs and options", param)
    knobs: dict[str, float] = {}
    for name, raw in value.items():
        if name in RESERVED:
            continue
        where = f"{param}.{name}"
        knobs[str(name)] = _checked(where, knob, raw, f"{where}: knob")
    vectors = _vectors(value.get("vectors"), n_layers, f"{param}.vectors")
    positions = value.get("positions")
    if positions is not None and positions not in ("all", "generated"):
        raise ApiError(
            f"{param}.positions: expected 'all' or 'generated', got {positions!r:.40}",
            f"{param}.positions",
        )
    options: dict[str, Any] = {}
    method = value.get("method")
    if method is not None:
        if method not in METHODS:
            raise ApiError(
                f"{param}.method: unknown steering method {method!r:.40}: expected one of "
                f"{', '.join(METHODS)}",
                f"{param}.method",
            )
        options["method"] = method
    guard = value.get("guard")
    if guard is not None:
        if not isinstance(guard, bool):
            raise ApiError(
                f"{param}.guard: expected true or false, got {guard!r:.40}", f"{param}.guard"
            )
        options["guard"] = guard
    return Steering(knobs, vectors, positions, options)


def _vectors(value: Any, n_layers: int, param: str) -> tuple[RawVector, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise ApiError(f"{param}: expected a list of {{layer, coeff, text | vector}}", param)
    if len(value) > MAX_VECTORS:
        raise ApiError(f"{param}: expected at most {MAX_VECTORS} vectors, got {len(value)}", param)
    out: list[RawVector] = []
    for i, item in enumerate(value):
        where = f"{param}[{i}]"
        if not isinstance(item, Mapping):
            raise ApiError(f"{where}: expected an object {{layer, coeff, text | vector}}", where)
        layer = _checked(
            f"{where}.layer",
            integer,
            item.get("layer"),
            f"{where}.layer",
            lo=-n_layers,
            hi=n_layers - 1,
        )
        coeff = _checked(
            f"{where}.coeff", number, item.get("coeff"), f"{where}.coeff", lo=-1000.0, hi=1000.0
        )
        has_text, has_vector = item.get("text") is not None, item.get("vector") is not None
        if has_text == has_vector:
            raise ApiError(f"{where}: expected exactly one of text or vector", where)
        kind: Literal["text", "dimension"] = "text" if has_text else "dimension"
        key = "text" if has_text else "vector"
        source = _string(item.get(key), f"{where}.{key}", MAX_TEXT)
        if not source.strip():
            raise ApiError(
                f"{where}.{key}: expected some text, got an empty string", f"{where}.{key}"
            )
        schedule = item.get("schedule", "constant")
        if schedule not in SCHEDULES:
            raise ApiError(
                f"{where}.schedule: expected one of {', '.join(SCHEDULES)}, got {schedule!r:.40}",
                f"{where}.schedule",
            )
        out.append(RawVector(layer % n_layers, coeff, source, kind, str(schedule)))
    return tuple(out)


def parse_request(data: Mapping[str, Any], chat: bool, n_layers: int) -> GenRequest:
    """A `/v1/chat/completions` (`chat`) or `/v1/completions` body."""
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError("model: expected the model's name (GET /v1/models lists it)", "model")
    messages: list[dict[str, str]] | None = None
    prompt: str | None = None
    if chat:
        messages = _messages(data.get("messages"))
    else:
        raw = data.get("prompt")
        if isinstance(raw, list) and len(raw) == 1 and isinstance(raw[0], str):
            raw = raw[0]
        if not isinstance(raw, str):
            raise ApiError("prompt: expected a string (one prompt per request)", "prompt")
        prompt = _string(raw, "prompt", MAX_PROMPT_CHARS)
    n = data.get("n")
    if n not in (None, 1):
        raise ApiError(f"n: expected 1 (one answer per request), got {n!r:.40}", "n")
    for unsupported in ("stop", "logprobs", "tools", "functions", "suffix", "echo", "best_of"):
        if data.get(unsupported) not in (None, False):
            raise ApiError(f"{unsupported}: not supported by this server", unsupported)
    limit_key = (
        "max_completion_tokens" if data.get("max_completion_tokens") is not None else "max_tokens"
    )
    max_tokens = data.get(limit_key)
    if max_tokens is not None:
        max_tokens = _checked(limit_key, integer, max_tokens, limit_key, lo=1, hi=MAX_NEW_TOKENS)
    temperature = _number_or(data, "temperature", 1.0, 0.0, 2.0)
    top_p = _number_or(data, "top_p", 1.0, 0.0, 1.0, lo_open=True)
    seed = data.get("seed")
    if seed is not None:
        seed = _checked("seed", integer, seed, "seed", lo=0, hi=SEED_MAX)
    stream = data.get("stream", False)
    if not isinstance(stream, bool) and stream is not None:
        raise ApiError(f"stream: expected true or false, got {stream!r:.40}", "stream")
    ignore_eos = data.get("ignore_eos", False)
    if not isinstance(ignore_eos, bool):
        raise ApiError(f"ignore_eos: expected true or false, got {ignore_eos!r:.40}", "ignore_eos")
    options = data.get("stream_options")
    include_usage = isinstance(options, Mapping) and options.get("include_usage") is True
    return GenRequest(
        model=model,
        chat=chat,
        messages=messages,
        prompt=prompt,
        max_tokens=max_tokens,
        temperature=temperature,
        top_p=top_p,
        seed=seed,
        stream=bool(stream),
        include_usage=include_usage,
        ignore_eos=ignore_eos,
        steering=parse_steering(data.get("steering"), n_layers),
    )


def _number_or(
    data: Mapping[str, Any], key: str, default: float, lo: float, hi: float, lo_open: bool = False
) -> float:
    value = data.get(key)
    if value is None:
        return default
    return _checked(key, number, value, key, lo=lo, hi=hi, lo_open=lo_open)


async def read_body(request: Request) -> bytes:
    """The body, refused past `MAX_BODY` bytes (413) before more of it is read."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_BODY:
        raise ApiError(
            f"the request body is {length} bytes: expected at most {MAX_BODY}", None, 413
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise ApiError(f"the request body is over {MAX_BODY} bytes", None, 413)
        chunks.append(chunk)
    return b"".join(chunks)

"""The search's TOML config: parsed, checked key by key, turned into a `SearchConfig`.

Every mistake is a `ConfigError` naming the file, the key path and what was expected. The format
is documented in docs/search.md; examples live in examples/.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steertui import validation
from steertui.errors import ConfigError, SteertuiError, first_line
from steertui.search.execution import ExecutionConfig, parse_execution
from steertui.search.space import SCHEDULE_KINDS

if TYPE_CHECKING:
    from steertui.home import Home

MODES = ("autosteer", "adaptive")
METRICS = (
    "task_accuracy",
    "perplexity",
    "lexicon",
    "regex",
    "answer_perplexity",
    "repetition",
    "judge",
    "probe",
    "length",
    "coherence",
    "custom",
)
COHERENCE_METRICS = ("answer_perplexity", "repetition", "coherence", "judge")


@dataclass
class MetricConfig:
    name: str = "task_accuracy"
    lower_is_better: bool | None = None
    dimension: str | None = None
    pole: str = "positive"
    words: list[str] = field(default_factory=list)
    opposite_words: list[str] = field(default_factory=list)
    pattern: str | None = None
    function: str | None = None
    judge_model: str | None = None
    trait: str | None = None
    aspect: str = "trait"
    texts: list[str] = field(default_factory=list)
    ngram: int = 3


@dataclass
class CoherenceConfig:
    metric: str = "answer_perplexity"
    min: float | None = None
    max: float | None = None
    judge_model: str | None = None


@dataclass
class SpaceConfig:
    layer_range: tuple[int, int] = (0, -1)
    coeff_range: tuple[float, float] = (0.05, 1.0)
    texts: list[str] = field(default_factory=list)
    negative_texts: list[str] = field(default_factory=list)
    dimensions: list[str] = field(default_factory=list)
    max_vectors: int = 2
    min_vectors: int = 1
    schedules: list[str] = field(default_factory=lambda: list(SCHEDULE_KINDS))


@dataclass
class AdaptiveConfig:
    dimensions: list[str] = field(default_factory=list)
    layers: list[int] = field(default_factory=list)
    steps: int = 5
    start_mult: float = 0.7
    up_mult: float = 1.3
    down_mult: float = 0.85
    momentum: float = 0.1
    base_coeff: float | None = None
    direction: str = "positive"
    write_range: bool = True


def _name(c: Any, key: str, v: Any) -> str:
    """A run's name: plain text a user could type, as a session title (issue 28)."""
    from steertui.safe_text import plain_line
    from steertui.store.models import TITLE_MAX

    name = c.string(key, v)
    return plain_line(name, f"{c.where}: {key}", TITLE_MAX, ConfigError) if name else name


@dataclass
class SearchConfig:
    """Everything one run needs; `to_dict()` is what the store keeps for `--resume`."""

    prompts: list[str]
    mode: str = "autosteer"
    name: str = ""
    model: str = "toy"
    device: str = "auto"
    dtype: str = "auto"
    expected_outputs: list[str] | None = None
    iterations: int = 30
    seed: int | None = None
    batch_size: int = 8
    log_path: str | None = None
    max_new_tokens: int = 32
    explore_after: int = 5
    chat_template: bool = True
    metric: MetricConfig = field(default_factory=MetricConfig)
    coherence: CoherenceConfig | None = None
    space: SpaceConfig | None = None
    adaptive: AdaptiveConfig | None = None
    execution: ExecutionConfig | None = None

    def to_dict(self) -> dict[str, Any]:
        return _clean(asdict(self))

    @property
    def lower_is_better(self) -> bool:
        if self.metric.lower_is_better is not None:
            return self.metric.lower_is_better
        return self.metric.name in ("perplexity", "answer_perplexity", "repetition")


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if v is not None and v != []}
    if isinstance(value, tuple | list):
        return [_clean(v) for v in value]
    return value


# ---- checking ----------------------------------------------------------------------------------


class _Checker:
    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, key: str, expected: str, got: Any = ...) -> ConfigError:
        shown = "" if got is ... else f", got {got!r}"
        return ConfigError(f"{self.where}: {key}: expected {expected}{shown}")

    def table(self, data: Any, key: str, allowed: dict[str, Callable[[str, Any], Any]]) -> dict:
        if not isinstance(data, dict):
            raise self.fail(key or "top level", "a table", data)
        out: dict[str, Any] = {}
        for k, v in data.items():
            path = f"{key}.{k}" if key else k
            if k not in allowed:
                names = ", ".join(sorted(allowed))
                raise ConfigError(f"{self.where}: {path}: unknown key; expected one of {names}")
            out[k] = allowed[k](path, v)
        return out

    def string(self, key: str, v: Any) -> str:
        if not isinstance(v, str):
            raise self.fail(key, "a string", v)
        return v

    def nonempty(self, key: str, v: Any) -> str:
        s = self.string(key, v)
        if not s.strip():
            raise self.fail(key, "a non-empty string", v)
        return s

    def boolean(self, key: str, v: Any) -> bool:
        if not isinstance(v, bool):
            raise self.fail(key, "true or false", v)
        return v

    def integer(self, key: str, v: Any, lo: int | None = None, hi: int | None = None) -> int:
        return validation.integer(v, f"{self.where}: {key}", lo, hi)

    def number(self, key: str, v: Any, lo: float | None = None, positive: bool = False) -> float:
        if positive:
            return validation.number(v, f"{self.where}: {key}", 0.0, lo_open=True)
        return validation.number(v, f"{self.where}: {key}", lo)

    def strings(self, key: str, v: Any, nonempty: bool = False) -> list[str]:
        if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
            raise self.fail(key, "a list of strings", v)
        if nonempty and not v:
            raise self.fail(key, "a non-empty list of strings", v)
        return list(v)

    def name(self, key: str, v: Any) -> str:
        """A dimension name, checked by the one name rule (it becomes part of file names)."""
        from steertui.vectors.dimensions import check_name

        return check_name(self.string(key, v), f"{self.where}: {key}: dimension", ConfigError)

    def names(self, key: str, v: Any, nonempty: bool = False) -> list[str]:
        return [self.name(f"{key}[{i}]", x) for i, x in enumerate(self.strings(key, v, nonempty))]

    def choice(self, key: str, v: Any, options: tuple[str, ...]) -> str:
        if v not in options:
            raise self.fail(key, "one of " + ", ".join(repr(o) for o in options), v)
        return v

    def pair(self, key: str, v: Any, kind: str) -> tuple[Any, Any]:
        if not isinstance(v, list) or len(v) != 2:
            raise self.fail(key, f"a list of two {kind}s [low, high]", v)
        conv = self.integer if kind == "integer" else self.number
        lo, hi = conv(f"{key}[0]", v[0]), conv(f"{key}[1]", v[1])
        if kind != "integer" and lo > hi:
            raise self.fail(key, "low <= high", v)
        if kind == "integer" and (lo < 0) == (hi < 0) and lo > hi:
            raise self.fail(key, "low <= high", v)
        return lo, hi

    def ints(self, key: str, v: Any) -> list[int]:
        if not isinstance(v, list):
            raise self.fail(key, "a list of integers", v)
        return [self.integer(f"{key}[{i}]", x) for i, x in enumerate(v)]


def parse_config(data: dict[str, Any], where: str = "search config") -> SearchConfig:
    """Check a parsed TOML document (or a stored config dict) and build the config."""
    c = _Checker(where)
    metric_keys: dict[str, Callable[[str, Any], Any]] = {
        "name": lambda k, v: c.choice(k, v, METRICS),
        "lower_is_better": c.boolean,
        "dimension": c.name,
        "pole": lambda k, v: c.choice(k, v, ("positive", "negative")),
        "words": lambda k, v: c.strings(k, v, nonempty=True),
        "opposite_words": c.strings,
        "pattern": c.nonempty,
        "function": c.nonempty,
        "judge_model": c.nonempty,
        "trait": c.nonempty,
        "aspect": lambda k, v: c.choice(k, v, ("trait", "coherence")),
        "texts": lambda k, v: c.strings(k, v, nonempty=True),
        "ngram": lambda k, v: c.integer(k, v, 1, 8),
    }
    coherence_keys: dict[str, Callable[[str, Any], Any]] = {
        "metric": lambda k, v: c.choice(k, v, COHERENCE_METRICS),
        "min": c.number,
        "max": c.number,
        "judge_model": c.nonempty,
    }
    space_keys: dict[str, Callable[[str, Any], Any]] = {
        "layer_range": lambda k, v: c.pair(k, v, "integer"),
        "coeff_range": lambda k, v: c.pair(k, v, "number"),
        "texts": c.strings,
        "negative_texts": c.strings,
        "dimensions": c.names,
        "max_vectors": lambda k, v: c.integer(k, v, 1, 8),
        "min_vectors": lambda k, v: c.integer(k, v, 1, 8),
        "schedules": lambda k, v: [
            c.choice(f"{k}[{i}]", s, SCHEDULE_KINDS) for i, s in enumerate(c.strings(k, v, True))
        ],
    }
    adaptive_keys: dict[str, Callable[[str, Any], Any]] = {
        "dimensions": lambda k, v: c.names(k, v, nonempty=True),
        "layers": c.ints,
        "steps": lambda k, v: c.integer(k, v, 1, 100),
        "start_mult": lambda k, v: c.number(k, v, positive=True),
        "up_mult": lambda k, v: c.number(k, v, positive=True),
        "down_mult": lambda k, v: c.number(k, v, positive=True),
        "momentum": lambda k, v: _fraction(c, k, v),
        "base_coeff": lambda k, v: c.number(k, v, positive=True),
        "direction": lambda k, v: c.choice(k, v, ("positive", "negative")),
        "write_range": c.boolean,
    }
    top: dict[str, Callable[[str, Any], Any]] = {
        "mode": lambda k, v: c.choice(k, v, MODES),
        "name": lambda k, v: _name(c, k, v),
        "model": c.nonempty,
        "device": c.nonempty,
        "dtype": lambda k, v: c.choice(k, v, ("auto", "float32", "bfloat16", "float16")),
        "prompts": lambda k, v: c.strings(k, v, nonempty=True),
        "expected_outputs": c.strings,
        "iterations": lambda k, v: c.integer(k, v, 1, 100_000),
        "seed": lambda k, v: c.integer(k, v, 0, validation.SEED_MAX),
        "batch_size": lambda k, v: c.integer(k, v, 1, 1024),
        "log_path": c.nonempty,
        "max_new_tokens": lambda k, v: c.integer(k, v, 1, 4096),
        "explore_after": lambda k, v: c.integer(k, v, 1, 1000),
        "chat_template": c.boolean,
        "metric": lambda k, v: MetricConfig(**c.table(v, k, metric_keys)),
        "coherence": lambda k, v: CoherenceConfig(**c.table(v, k, coherence_keys)),
        "space": lambda k, v: _space(c, k, v, space_keys),
        "adaptive": lambda k, v: AdaptiveConfig(**c.table(v, k, adaptive_keys)),
        "execution": lambda k, v: parse_execution(c.where, k, v),
    }
    values = c.table(data, "", top)
    if "prompts" not in values:
        raise c.fail("prompts", "a non-empty list of strings (the key is missing)")
    cfg = SearchConfig(**values)
    _cross_check(c, cfg)
    return cfg


def _fraction(c: _Checker, key: str, v: Any) -> float:
    x = c.number(key, v)
    if not 0.0 <= x < 1.0:
        raise c.fail(key, "a number in [0, 1)", v)
    return x


def _space(
    c: _Checker, key: str, v: Any, keys: dict[str, Callable[[str, Any], Any]]
) -> SpaceConfig:
    values = c.table(v, key, keys)
    space = SpaceConfig(**values)
    if not (space.texts or space.negative_texts or space.dimensions):
        raise c.fail(key, "at least one of texts, negative_texts, dimensions")
    if space.min_vectors > space.max_vectors:
        raise c.fail(
            f"{key}.min_vectors", f"<= max_vectors ({space.max_vectors})", space.min_vectors
        )
    return space


def _cross_check(c: _Checker, cfg: SearchConfig) -> None:
    m = cfg.metric
    if m.name == "task_accuracy":
        if not cfg.expected_outputs:
            raise c.fail(
                "expected_outputs", "a list of strings, one per prompt (metric task_accuracy)"
            )
        if len(cfg.expected_outputs) != len(cfg.prompts):
            raise c.fail(
                "expected_outputs",
                f"{len(cfg.prompts)} strings, one per prompt",
                f"{len(cfg.expected_outputs)} strings",
            )
    if m.name == "probe" and not m.dimension:
        raise c.fail("metric.dimension", "the dimension whose probe judges answers (metric probe)")
    if m.name == "lexicon" and not (m.dimension or m.words):
        raise c.fail(
            "metric", "dimension (one of the model's dimensions) or words for metric lexicon"
        )
    if m.name == "regex" and not m.pattern:
        raise c.fail("metric.pattern", "a regular expression for metric regex")
    if m.name == "regex":
        import re

        try:
            re.compile(m.pattern or "")
        except re.error as exc:
            raise c.fail(
                "metric.pattern", f"a valid regular expression ({exc})", m.pattern
            ) from None
    if m.name == "custom" and (not m.function or ":" not in m.function):
        raise c.fail("metric.function", "'module:function' for metric custom", m.function)
    if m.name == "judge" and not m.judge_model:
        raise c.fail("metric.judge_model", "a local model path or id for metric judge")
    coh = cfg.coherence
    if coh is not None:
        if coh.min is None and coh.max is None:
            raise c.fail("coherence", "min or max (the floor the coherence must hold)")
        if coh.metric == "judge" and not (coh.judge_model or m.judge_model):
            raise c.fail("coherence.judge_model", "a local model path or id for the judge")
    if cfg.mode == "autosteer" and cfg.space is None:
        raise c.fail("space", "a [space] table for mode 'autosteer'")
    if cfg.mode == "adaptive":
        if cfg.adaptive is None or not cfg.adaptive.dimensions:
            raise c.fail(
                "adaptive.dimensions", "a non-empty list of dimensions for mode 'adaptive'"
            )
        if coh is None:
            raise c.fail(
                "coherence", "a [coherence] table for mode 'adaptive' (what 'holds' means)"
            )


def load_config(path: str | Path, home: Home | None = None) -> SearchConfig:
    """Read and check a TOML search config file: its text, its keys, and what can be checked
    without the model (the TSV log can be written, a custom metric imports, a lexicon's
    dimension is one of the model's in `home`), so a mistake is one line before a model loads
    or a run is created."""
    from steertui.files import output_file, read_text

    p = Path(path)
    text = read_text(p, "search config", ConfigError)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML ({exc})") from None
    cfg = parse_config(data, where=str(p))
    if cfg.log_path:
        log = Path(cfg.log_path).expanduser().resolve()  # relative to the cwd
        try:
            cfg.log_path = str(output_file(log, f"{p}: log_path"))
        except SteertuiError as exc:
            raise ConfigError(str(exc)) from None
    _check_metric(cfg, str(p), home)
    _check_device(cfg, str(p))
    return cfg


def _check_device(cfg: SearchConfig, where: str) -> None:
    """`device` names a device torch knows and has here: one line before the model loads."""
    from steertui.engine.loading import resolve_device

    try:
        resolve_device(cfg.device)
    except SteertuiError as exc:
        raise ConfigError(f"{where}: device: {exc}") from None


def _check_metric(cfg: SearchConfig, where: str, home: Home | None) -> None:
    """The metric's outside references: a lexicon's dimension, a custom metric's function."""
    m = cfg.metric
    if m.name == "lexicon" and not m.words:
        from steertui.hub import model_id_for
        from steertui.vectors.dimensions import DimensionLibrary

        known = DimensionLibrary(home, model_id_for(cfg.model)).names()
        if m.dimension not in known:
            raise ConfigError(
                f"{where}: metric.dimension: expected a dimension of {cfg.model} "
                f"({', '.join(known)}), got {m.dimension!r}"
            )
    if m.name == "custom" and m.function:
        from steertui.search.metrics import load_function

        try:
            load_function(m.function)
        except SteertuiError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        except Exception as exc:  # the module itself fails to import: its own error, one line
            raise ConfigError(
                f"{where}: metric.function: importing {m.function!r} failed "
                f"({type(exc).__name__}: {first_line(exc)})"
            ) from None

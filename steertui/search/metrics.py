"""What "good" means for a search: metrics over a batch of candidates.

A metric scores every candidate of one `EvalBatch` at once: generation-based metrics share the
batch's one batched `engine.generate` (prompts x candidates as rows, a plan per row), perplexity
metrics one batched `engine.perplexity` / `engine.nll`. The objective is the metric's score with
an optional coherence floor (answer perplexity under the unsteered model, repetition, or a judge).
"""

from __future__ import annotations

import importlib
import inspect
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from steertui.errors import ConfigError

if TYPE_CHECKING:
    from steertui.search.batch import EvalBatch

_WORD = re.compile(r"[a-z]+")


class Metric(Protocol):
    """Scores each candidate of a batch; `lower_is_better` orients the search."""

    name: str
    lower_is_better: bool

    def score(self, batch: EvalBatch) -> list[float]: ...


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


@dataclass
class TaskAccuracy:
    """Share of prompts whose answer contains the expected substring (case-insensitive)."""

    expected: Sequence[str]
    name: str = "task_accuracy"
    lower_is_better: bool = False

    def score(self, batch: EvalBatch) -> list[float]:
        exp = [e.lower() for e in self.expected]
        return [
            _mean([float(e in out.lower()) for e, out in zip(exp, outs, strict=True)])
            for outs in batch.outputs()
        ]


@dataclass
class Perplexity:
    """Mean per-text perplexity of `texts` (default: the prompts) under each candidate's steering."""

    texts: Sequence[str] | None = None
    name: str = "perplexity"
    lower_is_better: bool = True

    def score(self, batch: EvalBatch) -> list[float]:
        texts = list(self.texts or batch.prompt_texts)
        rows = [t for _ in batch.plans for t in texts]
        plans = [p for p in batch.plans for _ in texts]
        ppl = batch.engine.perplexity(rows, plans=plans)
        n = len(texts)
        return [_mean(ppl[i * n : (i + 1) * n]) for i in range(len(batch.plans))]


@dataclass
class Lexicon:
    """Share of answers leaning to the target words: more target-pole words than opposite ones."""

    words: Sequence[str]
    opposite_words: Sequence[str] = ()
    name: str = "lexicon"
    lower_is_better: bool = False

    def __post_init__(self) -> None:
        self._target = frozenset(w.lower() for w in self.words)
        self._opposite = frozenset(w.lower() for w in self.opposite_words)

    def lean(self, text: str) -> int:
        words = _WORD.findall(text.lower())
        pos = sum(w in self._target for w in words)
        neg = sum(w in self._opposite for w in words)
        return (pos > neg) - (neg > pos)

    def score(self, batch: EvalBatch) -> list[float]:
        return [_mean([float(self.lean(t) > 0) for t in outs]) for outs in batch.outputs()]


@dataclass
class RegexMetric:
    """Share of answers matching a regular expression."""

    pattern: str
    name: str = "regex"
    lower_is_better: bool = False

    def __post_init__(self) -> None:
        self._re = re.compile(self.pattern)

    def score(self, batch: EvalBatch) -> list[float]:
        return [_mean([float(bool(self._re.search(t))) for t in outs]) for outs in batch.outputs()]


@dataclass
class AnswerPerplexity:
    """Coherence proxy: perplexity of each candidate's answers under the unsteered model."""

    name: str = "answer_perplexity"
    lower_is_better: bool = True

    def score(self, batch: EvalBatch) -> list[float]:
        outs = batch.outputs()
        prompts = [p for _ in outs for p in batch.prompt_inputs]
        answers = [a for row in outs for a in row]
        nll = batch.engine.nll(prompts, answers, plans=None)
        n = len(batch.prompt_inputs)
        scores = []
        for i in range(len(outs)):
            total = sum(x for x, _ in nll[i * n : (i + 1) * n])
            count = sum(c for _, c in nll[i * n : (i + 1) * n])
            scores.append(math.exp(total / count) if count else float("nan"))
        return scores


_TOKEN = re.compile(r"\w+")


def repetition_rate(text: str, n: int = 3) -> float:
    """Share of repeated word n-grams: 0 for varied text, near 1 for a loop. Words are runs of
    letters and digits, case folded, so "Sélé-Séle-Sélé-..." loops as much as "a a a"."""
    words = _TOKEN.findall(text.lower())
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


MIN_ANSWER_TOKENS = 4  # an answer ended by the model in fewer tokens has said nothing


def collapse_reason(text: str, n_tokens: int, finished: bool = True) -> str | None:
    """Why an answer reads as collapsed, in a few words, or None: it ended (not stopped, not
    cut by the token limit) after almost nothing, or it loops (word 3-grams repeat beyond
    `CoherenceBounds.max_repetition`)."""
    if finished and (n_tokens < MIN_ANSWER_TOKENS or not text.strip()):
        return "a few tokens only"
    if repetition_rate(text) > CoherenceBounds.max_repetition:
        return "it repeats itself"
    return None


def english_ratio(text: str) -> float:
    """Share of the letters that are English (ASCII a-z): 1 for English text, 0 with no letters."""
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return 0.0
    return sum(ch.isascii() for ch in letters) / len(letters)


@dataclass(frozen=True)
class CoherenceBounds:
    """When an answer counts as coherent (each bound was set on SmolLM2-135M;
    the calibration and the bench read `search.coherence.CoherenceRule`, which also catches late
    breaks and loops).

    `max_perplexity`: perplexity of the answer under the unsteered model (`relative_to` sets it
    from the unsteered answers' own, times `perplexity_factor`); `max_repetition`:
    `repetition_rate` of word 3-grams; `min_english`: `english_ratio` (English prompts);
    `min_tokens`: an empty answer is not an answer."""

    max_perplexity: float = 30.0
    max_repetition: float = 0.35
    min_english: float = 0.95
    min_tokens: int = 1
    perplexity_factor: float = 3.0

    def relative_to(self, unsteered_perplexity: float) -> CoherenceBounds:
        """These bounds with the perplexity bound at `perplexity_factor` x the unsteered
        answers' mean perplexity (never above `max_perplexity`)."""
        if not math.isfinite(unsteered_perplexity) or unsteered_perplexity <= 0:
            return self
        bound = min(self.max_perplexity, self.perplexity_factor * unsteered_perplexity)
        return replace(self, max_perplexity=bound)


@dataclass(frozen=True)
class AnswerCoherence:
    """The offline coherence readings of one answer."""

    perplexity: float
    repetition: float
    english: float
    n_tokens: int

    def ok(self, bounds: CoherenceBounds) -> bool:
        return (
            self.n_tokens >= bounds.min_tokens
            and math.isfinite(self.perplexity)
            and self.perplexity <= bounds.max_perplexity
            and self.repetition <= bounds.max_repetition
            and self.english >= bounds.min_english
        )


def answer_coherence(
    engine: Any, prompts: Sequence[Any], answers: Sequence[str], priority: str = "search"
) -> list[AnswerCoherence]:
    """Perplexity under the unsteered model (one batched `engine.nll`), repetition and language
    of each answer to its prompt."""
    nll = engine.nll(list(prompts), list(answers), plans=None, priority=priority)
    out = []
    for answer, (total, count) in zip(answers, nll, strict=True):
        ppl = math.exp(min(total / count, 50.0)) if count else math.inf
        out.append(AnswerCoherence(ppl, repetition_rate(answer), english_ratio(answer), count))
    return out


@dataclass
class Coherence:
    """Coherence floor for any model: share of a candidate's answers that are coherent by
    `CoherenceBounds` (perplexity under the unsteered model, repetition, language)."""

    bounds: CoherenceBounds = CoherenceBounds()
    name: str = "coherence"
    lower_is_better: bool = False

    def readings(self, batch: EvalBatch) -> list[list[AnswerCoherence]]:
        outs = batch.outputs()
        prompts = [p for _ in outs for p in batch.prompt_inputs]
        flat = answer_coherence(batch.engine, prompts, [a for row in outs for a in row])
        n = len(batch.prompt_inputs)
        return [flat[i * n : (i + 1) * n] for i in range(len(outs))]

    def score(self, batch: EvalBatch) -> list[float]:
        return [_mean([float(r.ok(self.bounds)) for r in row]) for row in self.readings(batch)]


def answer_words(text: str) -> int:
    """Length of an answer in words (the verbosity judge)."""
    return len(text.split())


@dataclass
class AnswerLength:
    """Mean answer length in words: the judge of verbosity (higher = more verbose)."""

    name: str = "length"
    lower_is_better: bool = False

    def score(self, batch: EvalBatch) -> list[float]:
        return [_mean([float(answer_words(t)) for t in outs]) for outs in batch.outputs()]


@dataclass
class Repetition:
    """Coherence proxy: mean repetition rate of the answers (lower is better)."""

    ngram: int = 3
    name: str = "repetition"
    lower_is_better: bool = True

    def score(self, batch: EvalBatch) -> list[float]:
        return [_mean([repetition_rate(t, self.ngram) for t in outs]) for outs in batch.outputs()]


@dataclass
class CustomMetric:
    """A user function `fn(outputs, prompts, expected) -> float`, called once per candidate."""

    fn: Callable[..., float]
    name: str = "custom"
    lower_is_better: bool = False

    def score(self, batch: EvalBatch) -> list[float]:
        return [
            float(self.fn(outs, list(batch.prompt_texts), batch.expected))
            for outs in batch.outputs()
        ]


def load_function(spec: str) -> Callable[..., Any]:
    """Import `module:function` (the module must be importable from the current directory)."""
    import sys
    from pathlib import Path

    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"metric.function: expected 'module:function', got {spec!r}")
    cwd = str(Path.cwd())
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"metric.function: cannot import module {module_name!r} ({exc})"
        ) from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ConfigError(f"metric.function: {module_name!r} has no function {attr!r}")
    return fn


def is_autosteer_callable(fn: Callable[..., Any]) -> bool:
    """AutoSteer's custom metrics take `(model, tokenizer, prompts)`."""
    try:
        params = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return False
    return bool(params) and params[0] == "model"


@dataclass
class CoherenceFloor:
    """A coherence metric and the bound it must hold (`min` for higher-is-better ones)."""

    metric: Metric
    min: float | None = None
    max: float | None = None

    def holds(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.min is not None and value < self.min:
            return False
        return not (self.max is not None and value > self.max)

    def explain(self, value: float) -> str:
        bound = f">= {self.min:g}" if self.min is not None else f"<= {self.max:g}"
        return f"coherence floor: {self.metric.name} {value:.4g}, expected {bound}"

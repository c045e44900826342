"""The frontier of `bench/steer_eval.py --frontier`: knob, prompt and prompt + knob, and each
steering method's effect against coherence over a ladder of pushes, read by two judges.

For every dimension and answer length, the same held-out questions are answered (one batched
generate per `--batch` rows, a plan per row) under:
- unsteered;
- prompt: a system prompt naming the pole, written from the dimension's own description;
- knob: the knob at -100 / +100 (the calibrated range), per method;
- prompt + knob: both, towards the same pole;
- the ladder: each method at +-p % of the calibrated range, for p in `--ladder`;
- with `--guard`: the knob and prompt + knob again with the coherence guard on, as the app's
  knobs and `generate` steer (`engine.guard`): what the guard keeps of the swing, and gains in
  coherence.

Two judges score each answer 0-100 towards the positive pole: the probe judge (trained on the
dimension's own contrastive examples: it knows what the vector was built from) and the word
judge (`vectors/judge_words/DIM.toml`, word lists written apart from those examples: the
share of pole words that are the positive pole's, 50 when there are none). A setting's swing
is its + score minus its - score. Coherence is `steertui.search.coherence`'s rule, the one
the calibration uses, against the unsteered answers' median perplexity; `ppl x` is a cell's
median perplexity over that reference.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common import mean_err

if TYPE_CHECKING:
    from steertui.engine import Engine
    from steertui.search.coherence import Reading
    from steertui.vectors.dimensions import Dimension
    from steertui.vectors.file import SteeringVector

WORDS_DIR = Path(__file__).resolve().parent.parent / "vectors" / "judge_words"
_TOKEN = re.compile(r"[a-z]+(?:-[a-z]+)*")


@dataclass(frozen=True)
class Method:
    """A steering method as the bench names it: `NAME[@POSITIONS]`; `all` and `generated`
    alone are the engine's default push on those positions. NAME goes to the engine's
    `VectorSpec.method` as is."""

    name: str | None
    positions: str

    @property
    def label(self) -> str:
        return f"{self.name or 'add'}@{self.positions}"

    @classmethod
    def parse(cls, text: str) -> Method:
        text = text.strip()
        if text in ("all", "generated"):
            return cls(None, text)
        name, _, positions = text.partition("@")
        if positions not in ("", "all", "generated"):
            raise SystemExit(f"--methods {text!r}: positions must be all or generated")
        return cls(None if name in ("", "add", "default") else name, positions or "all")


class WordJudge:
    """Pole-word share 0-100 from word lists written apart from the dataset."""

    def __init__(self, dimension: str, folder: Path = WORDS_DIR) -> None:
        path = folder / f"{dimension}.toml"
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        self.negative = frozenset(w.lower() for w in data["negative"])
        self.positive = frozenset(w.lower() for w in data["positive"])

    def _pole(self, word: str) -> int:
        for w in (word, word[:-1] if word.endswith("s") else word):
            if w in self.positive:
                return 1
            if w in self.negative:
                return -1
        return 0

    def counts(self, text: str) -> tuple[int, int]:
        """(positive-pole words, negative-pole words) in `text`."""
        poles = [self._pole(w) for w in _TOKEN.findall(text.lower())]
        return poles.count(1), poles.count(-1)

    def score(self, text: str) -> float:
        pos, neg = self.counts(text)
        return 50.0 if pos + neg == 0 else 100.0 * pos / (pos + neg)


def pole_prompt(dimension: Dimension, positive: bool) -> str:
    """A system prompt naming the pole, from the dimension's own description."""
    pole = dimension.positive if positive else dimension.negative
    other = dimension.negative if positive else dimension.positive
    return (
        f"In every answer, lean clearly towards {pole}, never {other}. "
        f"What this means: {dimension.description}"
    )


@dataclass
class Cell:
    """The answers of one setting at one pole: their readings and both judges'."""

    key: tuple[Any, ...]
    answers: list[str] = field(default_factory=list)
    readings: list[Reading] = field(default_factory=list)
    probe: list[float] = field(default_factory=list)
    words: list[float] = field(default_factory=list)

    def summary(self, reference: float) -> dict[str, Any]:
        import statistics

        from steertui.search.coherence import CoherenceRule

        rule = CoherenceRule()
        ok = [rule.ok(r, reference) for r in self.readings]
        share = sum(ok) / len(ok) if ok else math.nan
        ppls = [r.perplexity for r in self.readings if math.isfinite(r.perplexity)]
        return {
            "probe": mean_err(self.probe),
            "words": mean_err(self.words),
            "coherent": share,
            "coherent_err": 2 * math.sqrt(share * (1 - share) / len(ok)) if ok else math.nan,
            "ppl_ratio": statistics.median(ppls) / reference
            if ppls and reference > 0
            else math.nan,
            "why_not": [rule.why_not(r, reference) for r in self.readings],
            "n_words": mean_err([float(len(a.split())) for a in self.answers])[0],
        }


def run_dimension(
    engine: Engine,
    dimension: Dimension,
    vector: SteeringVector,
    prompts: Sequence[str],
    tokens: int,
    methods: Sequence[Method],
    ladder: Sequence[float],
    sampling: Any,
    batch: int,
    log: Any = None,
    guard: bool = False,
) -> dict[str, Any]:
    """Every setting of one dimension at one answer length; returns the summaries."""
    from steertui.search.calibrate import GridRow, answer_rows, steer_plan
    from steertui.search.coherence import reference_of
    from steertui.search.judge import ProbeJudge

    probe = ProbeJudge.train(engine, dimension)
    words = WordJudge(dimension.name)
    layers = list(vector.recommended_layers)
    c = vector.c_max
    first = methods[0]

    def asked(q: str, system: str | None) -> Any:
        user = {"role": "user", "content": q}
        return [{"role": "system", "content": system}, user] if system else [user]

    settings: list[tuple[tuple[Any, ...], str | None, float, Method, bool]] = [
        (("unsteered", 0), None, 0.0, first, False)
    ]
    for sign in (-1, 1):
        system = pole_prompt(dimension, sign > 0)
        settings.append((("prompt", sign), system, 0.0, first, False))
        settings.append((("prompt+knob", sign), system, sign * c, first, False))
        if guard:
            settings.append((("knob+guard", sign), None, sign * c, first, True))
            settings.append((("prompt+knob+guard", sign), system, sign * c, first, True))
        for m in methods:
            for p in ladder:
                settings.append((("ladder", m.label, p, sign), None, sign * c * p / 100, m, False))
    rows = [
        GridRow(
            (key, i),
            asked(q, system),
            steer_plan(vector, coeff, layers, m.positions, m.name, guard=guarded),
        )
        for key, system, coeff, m, guarded in settings
        for i, q in enumerate(prompts)
    ]
    cells: dict[tuple[Any, ...], Cell] = {key: Cell(key) for key, *_ in settings}
    params = _with_tokens(sampling, tokens)
    for lo in range(0, len(rows), batch):
        chunk = rows[lo : lo + batch]
        got = answer_rows(engine, chunk, params, probe)
        for row, (text, reading, read) in zip(chunk, got, strict=True):
            cell = cells[row.key[0]]
            cell.answers.append(text)
            cell.readings.append(reading)
            cell.probe.append(100.0 * read if read is not None else math.nan)
            cell.words.append(words.score(text))
        print(
            f"    {dimension.name} {tokens} tokens: {lo + len(chunk)}/{len(rows)} answers",
            flush=True,
        )
    reference = reference_of(cells[("unsteered", 0)].readings)
    out = {
        "dimension": dimension.name,
        "poles": [dimension.negative, dimension.positive],
        "tokens": tokens,
        "n": len(prompts),
        "c_max": c,
        "layers": layers,
        "range": vector.meta.c_max_source,
        "reference_ppl": reference,
        "probe": {"layer": probe.layer, "accuracy": probe.accuracy},
        "cells": {
            "|".join(str(x) for x in key): {**cell.summary(reference), "answers": cell.answers}
            for key, cell in cells.items()
        },
    }
    if log is not None:
        import json

        print(json.dumps(out, default=_json), file=log, flush=True)
    return out


def _json(x: Any) -> Any:
    return None if isinstance(x, float) and not math.isfinite(x) else str(x)


def _with_tokens(sampling: Any, tokens: int) -> Any:
    from dataclasses import replace

    return replace(sampling, max_new_tokens=tokens)


def _swing(plus: dict[str, Any], minus: dict[str, Any], judge: str) -> tuple[float, float]:
    (p, pe), (m, me) = plus[judge], minus[judge]
    err = math.sqrt((pe if math.isfinite(pe) else 0) ** 2 + (me if math.isfinite(me) else 0) ** 2)
    return p - m, err


def fmt(x: float, err: float | None = None) -> str:
    if not math.isfinite(x):
        return "-"
    return f"{x:.0f}" if err is None or not math.isfinite(err) else f"{x:.0f}±{err:.0f}"


def tables(
    results: Sequence[dict[str, Any]], methods: Sequence[Method], ladder: Sequence[float]
) -> list[str]:
    """The settings table (knob / prompt / prompt + knob) and the methods' curves, markdown."""
    lines = [
        "| dimension | tokens | setting | probe - / + | swing (probe) | words - / + | swing (words) | coherent - / + | ppl x - / + |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        cells = r["cells"]
        base = cells["unsteered|0"]
        lines.append(
            f"| {r['dimension']} ({r['poles'][0]} / {r['poles'][1]}) | {r['tokens']} | unsteered "
            f"| {fmt(*base['probe'])} | | {fmt(*base['words'])} | | {base['coherent']:.0%} | "
            f"{base['ppl_ratio']:.1f} |"
        )
        knob = f"ladder|{methods[0].label}|100.0"
        for label, key in (
            ("knob ±100", knob),
            ("knob ±100, guard", "knob+guard"),
            ("prompt", "prompt"),
            ("prompt + knob", "prompt+knob"),
            ("prompt + knob, guard", "prompt+knob+guard"),
        ):
            if f"{key}|1" not in cells:
                continue  # a setting the run did not have (the guard's, without --guard)
            minus, plus = cells[f"{key}|-1"], cells[f"{key}|1"]
            lines.append(_row(r, label, minus, plus))
    lines += [
        "",
        "| dimension | tokens | method | push % | swing (probe) | swing (words) | coherent (both poles) | ppl x - / + |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        cells = r["cells"]
        for m in methods:
            for p in ladder:
                minus, plus = (
                    cells[f"ladder|{m.label}|{float(p)}|-1"],
                    cells[f"ladder|{m.label}|{float(p)}|1"],
                )
                sp, spe = _swing(plus, minus, "probe")
                sw, swe = _swing(plus, minus, "words")
                both = (plus["coherent"] + minus["coherent"]) / 2
                lines.append(
                    f"| {r['dimension']} | {r['tokens']} | {m.label} | {p:g} | {fmt(sp, spe)} | "
                    f"{fmt(sw, swe)} | {both:.0%} | {minus['ppl_ratio']:.1f} / {plus['ppl_ratio']:.1f} |"
                )
    return lines


def _row(r: dict[str, Any], label: str, minus: dict[str, Any], plus: dict[str, Any]) -> str:
    sp, spe = _swing(plus, minus, "probe")
    sw, swe = _swing(plus, minus, "words")
    return (
        f"| | | {label} | {fmt(*minus['probe'])} / {fmt(*plus['probe'])} | {fmt(sp, spe)} | "
        f"{fmt(*minus['words'])} / {fmt(*plus['words'])} | {fmt(sw, swe)} | "
        f"{minus['coherent']:.0%} / {plus['coherent']:.0%} | "
        f"{minus['ppl_ratio']:.1f} / {plus['ppl_ratio']:.1f} |"
    )

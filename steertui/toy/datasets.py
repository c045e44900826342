"""Contrastive datasets for the toy's five dimensions, in the toy's own language.

Each example renders one answer skeleton twice, identical except for the pole of one dimension
(the other four poles are random but the same in both), so the two answers differ only in that
dimension's pole words. Written as the dimension TOML format of docs/architecture.md.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from steertui.files import write_atomic
from steertui.toy import card
from steertui.toy.world import (
    CATEGORIES,
    DESCRIPTIONS,
    DIMENSIONS,
    POLE_LABELS,
    draw_poles,
    draw_skeleton,
    make_request,
    render,
)


@dataclass(frozen=True)
class Pair:
    """One contrastive example: a request and two answers that differ in one dimension's pole."""

    prompt: str
    positive: str
    negative: str


def contrastive_pairs(dim: str, n: int, seed: int = 0) -> list[Pair]:
    """`n` pairs for `dim`, deterministic from the seed (and distinct per dimension)."""
    rng = random.Random(f"pairs-{dim}-{seed}")
    pairs: list[Pair] = []
    for _ in range(n):
        category = rng.choice(CATEGORIES)
        prompt = make_request(rng, category)
        skeleton = draw_skeleton(rng, category)
        poles = draw_poles(rng)
        pairs.append(
            Pair(
                prompt,
                render(skeleton, poles | {dim: True}),
                render(skeleton, poles | {dim: False}),
            )
        )
    return pairs


def _quote(text: str) -> str:
    """A TOML basic string."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def dataset_toml(dim: str, n_examples: int = 64, n_questions: int = 3, seed: int = 0) -> str:
    """The TOML text of one dimension's dataset."""
    neg, pos = POLE_LABELS[dim]
    lines = [
        f"# The toy model's {dim} dimension; written by `steertui toy datasets`.",
        f"name = {_quote(dim)}",
        f"negative = {_quote(neg)}",
        f"positive = {_quote(pos)}",
        f"description = {_quote(DESCRIPTIONS[dim])}",
        'model = "toy"',
        f"push = {card()['knob_push']}",
    ]
    for pair in contrastive_pairs(dim, n_examples, seed):
        lines += [
            "",
            "[[examples]]",
            f"prompt = {_quote(pair.prompt)}",
            f"positive = {_quote(pair.positive)}",
            f"negative = {_quote(pair.negative)}",
        ]
    rng = random.Random(f"questions-{dim}-{seed}")
    for category in rng.sample(CATEGORIES, n_questions):
        lines += ["", "[[questions]]", f"text = {_quote(make_request(rng, category))}"]
    return "\n".join(lines) + "\n"


def write_datasets(out: Path, n_examples: int = 64, seed: int = 0) -> list[Path]:
    """Write `<out>/<dim>.toml` for the five dimensions, each file replaced atomically."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for dim in DIMENSIONS:
        path = out / f"{dim}.toml"
        write_atomic(path, dataset_toml(dim, n_examples, seed=seed), "dataset file", mode=0o644)
        written.append(path)
    return written

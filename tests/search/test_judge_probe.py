"""The offline judges: the probe judge separates a dimension's own held-out contrastive examples
on a real model (SmolLM2-135M-Instruct, loaded once per run), and the text-only coherence
readings catch the loops and the non-English drift a steered model falls into."""

from __future__ import annotations

from dataclasses import replace

from steertui.engine import Engine
from steertui.home import Home
from steertui.search.judge import ProbeJudge, split_pairs
from steertui.search.metrics import CoherenceBounds, english_ratio, repetition_rate
from steertui.vectors.dimensions import DimensionLibrary

MIN_HELD_OUT_ACCURACY = 0.85
"""On 13 held-out pairs (26 answers) of `cost`: at most 3 wrong. Measured: 1.00."""


def test_probe_judge_separates_held_out_contrastive_examples(
    smollm2_engine: Engine, smollm2_home: Home
) -> None:
    dim = DimensionLibrary(smollm2_home, str(smollm2_engine.model_id)).get("cost")
    train, test = split_pairs(len(dim.examples), 0.25, seed=1)
    probe = ProbeJudge.train(
        smollm2_engine, replace(dim, examples=[dim.examples[i] for i in train])
    )
    held = [dim.examples[i] for i in test]
    prompts = [e.prompt for e in held] * 2
    answers = [e.positive for e in held] + [e.negative for e in held]
    labels = [True] * len(held) + [False] * len(held)
    probs = probe.read(smollm2_engine, prompts, answers)
    assert all(p is not None for p in probs)
    right = sum((p > 0.5) == y for p, y in zip(probs, labels, strict=True) if p is not None)
    assert right / len(labels) >= MIN_HELD_OUT_ACCURACY, (right, len(labels), probe.layer)
    assert 0 < probe.layer < smollm2_engine.n_layers - 1
    assert probe.read(smollm2_engine, ["Hi?"], [""]) == [None]  # no answer, no reading


def test_coherence_readings_catch_loops_and_language_drift() -> None:
    bounds = CoherenceBounds()
    assert (
        repetition_rate("I can too. I can too. I can too. I can too. I can too.")
        > bounds.max_repetition
    )
    assert repetition_rate("Book a suite with a view, then dinner at the rooftop bar.") == 0.0
    assert english_ratio("Book a suite with a view.") == 1.0
    assert english_ratio("Chéle-Sélé-Séle-Sélé") < bounds.min_english
    assert english_ratio("") == 0.0

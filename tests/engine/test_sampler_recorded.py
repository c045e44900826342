"""Generation before and after the batched sampler: token-identical, text-identical.

`tests/engine/recorded/engine_outputs.json` was written by the per-row sampler and re-decoding
detokenizer this module replaced (`python -m tests.test_sampler_recorded --record`, run on the
old code); these tests replay the same requests on today's engine and compare every row's token
ids, text and finish reason. Greedy and seeded sampled requests, with top-k, top-p, repetition
penalty, per-row seeds, rows finishing early and a steered batch, on the toy model and on a tiny
random-weight model (whose byte-level tokens split multi-byte characters), plus a short greedy
answer of SmolLM2-135M-Instruct.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from steertui.engine import Engine, RowPlan, SamplingParams, VectorSpec
from tests.real_model import smollm2_installed
from tests.tiny_models import tiny_engine

RECORDED = Path(__file__).resolve().parent / "recorded" / "engine_outputs.json"

PROMPTS = [
    "Where should we eat tonight?",
    "A cheap hotel near the station, please.",
    "Plan a weekend away with the kids.",
]

# name -> (sampling keyword arguments, row_seeds, steered)
CASES: dict[str, tuple[dict[str, Any], list[int] | None, bool]] = {
    "greedy": ({"temperature": 0.0, "max_new_tokens": 40}, None, False),
    "sampled": ({"temperature": 0.9, "top_p": 0.9, "max_new_tokens": 40, "seed": 7}, None, False),
    "top_k_penalty": (
        {
            "temperature": 1.3,
            "top_k": 20,
            "top_p": 1.0,
            "repetition_penalty": 1.3,
            "max_new_tokens": 40,
            "seed": 3,
        },
        None,
        False,
    ),
    "greedy_penalty": (
        {"temperature": 0.0, "repetition_penalty": 1.5, "max_new_tokens": 30},
        None,
        False,
    ),
    "row_seeds": (
        {"temperature": 1.0, "top_p": 0.8, "top_k": 50, "max_new_tokens": 32},
        [11, 5, 11],
        False,
    ),
    "steered_sampled": (
        {"temperature": 0.8, "top_p": 0.95, "max_new_tokens": 32, "seed": 1},
        None,
        True,
    ),
    "steered_greedy": ({"temperature": 0.0, "max_new_tokens": 32}, None, True),
}


def _plans(engine: Engine) -> list[RowPlan]:
    """The recorded push alone: the coherence guard (which came after the recording, and would
    block the random push's loops) is off, so the sampler is what is compared."""
    gen = torch.Generator().manual_seed(0)
    h = engine.hidden_size
    layer = engine.n_layers // 2
    return [
        RowPlan(
            [VectorSpec(layer, torch.randn(h, generator=gen), 0.4, scale=4.0, name="a")],
            guard=False,
        ),
        RowPlan(guard=False),
        RowPlan(
            [VectorSpec(layer, torch.randn(h, generator=gen), -0.3, scale=4.0, name="b")],
            positions="generated",
            guard=False,
        ),
    ]


def run_case(engine: Engine, name: str) -> list[dict[str, Any]]:
    kwargs, row_seeds, steered = CASES[name]
    results = engine.generate(
        PROMPTS,
        plans=_plans(engine) if steered else None,
        sampling=SamplingParams(**kwargs),
        row_seeds=row_seeds,
    )
    return [
        {"token_ids": r.token_ids, "text": r.text, "finish_reason": r.finish_reason}
        for r in results
    ]


def smollm2_answer(engine: Engine) -> dict[str, Any]:
    result = engine.generate(
        ["What is the capital of France? Answer in one sentence."],
        sampling=SamplingParams(temperature=0.0, max_new_tokens=24),
    )[0]
    return {
        "token_ids": result.token_ids,
        "text": result.text,
        "finish_reason": result.finish_reason,
    }


def _toy() -> Engine:
    from steertui.engine import load_model

    return Engine(load_model("toy", device="cpu", dtype="float32"))


def _recorded() -> dict[str, Any]:
    return json.loads(RECORDED.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def toy() -> Engine:
    return _toy()


@pytest.fixture(scope="module")
def tiny() -> Engine:
    return tiny_engine("llama", seed=3)


@pytest.mark.parametrize("case", sorted(CASES))
def test_toy_outputs_match_the_recorded_ones(toy: Engine, case: str) -> None:
    assert run_case(toy, case) == _recorded()["toy"][case]


@pytest.mark.parametrize("case", sorted(CASES))
def test_tiny_random_model_outputs_match_the_recorded_ones(tiny: Engine, case: str) -> None:
    assert run_case(tiny, case) == _recorded()["tiny-llama"][case]


def _rows(cases: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [row for rows in cases.values() for row in rows]


def test_recorded_outputs_exercise_what_they_claim() -> None:
    """The fixtures would catch a change: rows end early, sampled rows differ from greedy ones,
    and the tiny model's text holds characters split across tokens."""
    rec = _recorded()
    reasons = {row["finish_reason"] for model in ("toy", "tiny-llama") for row in _rows(rec[model])}
    assert reasons == {"eos", "length"}
    for model in ("toy", "tiny-llama"):
        assert rec[model]["sampled"] != rec[model]["greedy"]
        assert rec[model]["row_seeds"] != rec[model]["sampled"]
    tiny_text = "".join(row["text"] for row in _rows(rec["tiny-llama"]))
    assert any(ord(ch) > 127 for ch in tiny_text)


def test_smollm2_greedy_answer_matches_the_recorded_one(smollm2_engine: Engine) -> None:
    assert smollm2_answer(smollm2_engine) == _recorded()["smollm2"]


def record() -> None:
    """Write the fixtures from the engine as it is now (run once, before a change)."""
    import tempfile

    from steertui.engine import load_model
    from steertui.home import Home

    out: dict[str, Any] = {}
    for label, engine in (("toy", _toy()), ("tiny-llama", tiny_engine("llama", seed=3))):
        out[label] = {name: run_case(engine, name) for name in CASES}
    if smollm2_installed():
        home = Home(Path(tempfile.mkdtemp(prefix="steertui-record-")))
        out["smollm2"] = smollm2_answer(
            Engine(load_model("smollm2", device="cpu", dtype="float32", home=home))
        )
    RECORDED.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {RECORDED}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--record"]:
        record()

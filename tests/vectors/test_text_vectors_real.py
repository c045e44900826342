"""Text vectors on a real chat model (SmolLM2-135M-Instruct), whose first token carries a massive
activation: the AutoSteer README's example stays coherent, a text pushes with the norm of a
typical token, and a text is captured unsteered.

The model loads once per run (`smollm2_engine`); every generation here is greedy, so each check
is deterministic on a given machine and the bounds below are margins, not statistics.
"""

from __future__ import annotations

import pytest
import torch

from steertui.engine import Engine, Steer
from steertui.engine.pooling import SINK_FACTOR, counted_positions
from steertui.engine.text_vector import text_row, text_vector
from steertui.search.evaluate import PlanBuilder
from steertui.search.space import CandidateVector
from steertui.vectors.extract import extract_text_vector

PROMPT = "What weighs more, two pounds of feathers or one pound of bricks?"
MAX_NEW = 48
PPL_FACTOR = 3.0
"""The steered answer's perplexity under the unsteered model may be at most this many times the
unsteered answer's. Measured on this machine: unsteered 1.86; README example at layer 20 3.10
(x1.7); before the first token was left out, " wis wis wis ..." scored 7.50 (x4.0)."""
MIN_DISTINCT = 0.4
"""Distinct words over words in the steered answer: a repetition loop scores low perplexity
once it has started (the old " wis wis ..." had 1/48), so coherence needs both checks."""


def _answer(engine: Engine, model: torch.nn.Module) -> str:
    """Greedy answer through plain `model.generate`, as the README does (steered by hooks)."""
    ids = torch.tensor([engine.prompt_ids(PROMPT)])
    with torch.inference_mode():
        out = model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=MAX_NEW,
            do_sample=False,
            pad_token_id=engine.tokenizer.eos_token_id,
        )
    return str(engine.tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True))


def _perplexity(engine: Engine, answer: str) -> float:
    ((nll, n),) = engine.nll([PROMPT], [answer])
    return float(torch.exp(torch.tensor(nll / max(n, 1))))


@pytest.fixture(scope="module")
def unsteered_answer(smollm2_engine: Engine) -> tuple[str, float]:
    answer = _answer(smollm2_engine, smollm2_engine.model)
    return answer, _perplexity(smollm2_engine, answer)


def test_the_first_token_is_a_sink_and_is_not_counted(smollm2_engine: Engine) -> None:
    """The premise: at layer 15 the first token is massive; the rule leaves out that one only."""
    row = text_row(smollm2_engine.tokenizer, "The hotel has a luxury spa and a private butler.")
    acts = smollm2_engine.capture([row.ids], layers=[15])[0]
    norms = acts.norm(dim=-1)
    assert float(norms[0, 0]) > 10_000 > 50 * float(norms[0, 1:].median())
    mask = counted_positions(norms, row.start, row.stop)
    assert mask[0, 1:].all() and not mask[0, 0]
    assert float(norms[0, 1:].max()) < SINK_FACTOR * float(norms[0, 1:].median())


@pytest.mark.parametrize("layer", [20, 19])  # as the README shows it, and ported (input of 20)
def test_autosteer_readme_example_stays_coherent(
    smollm2_engine: Engine, unsteered_answer: tuple[str, float], layer: int
) -> None:
    base, base_ppl = unsteered_answer
    model = smollm2_engine.model
    with Steer(model, smollm2_engine.tokenizer) as steered:
        steered.add(layer_idx=layer, coeff=0.4, text="logical")
        steered.add(layer_idx=layer, coeff=-0.4, text="irrational")
        answer = _answer(smollm2_engine, model)
    ppl = _perplexity(smollm2_engine, answer)  # steering removed: the unsteered model judges
    words = answer.split()
    assert answer != base, "the steering changed nothing"
    assert len(words) >= 10, answer
    assert len(set(words)) / len(words) >= MIN_DISTINCT, answer
    assert ppl <= PPL_FACTOR * base_ppl, (answer, ppl, base_ppl)


def test_a_text_pushes_with_the_norm_of_a_typical_token(smollm2_engine: Engine) -> None:
    """`add(15, 0.3, text="luxury")` adds 0.3 x the mean norm of the text's counted tokens at 15:
    hundreds, like every token but the first, where the sink made it 3,816."""
    ids = smollm2_engine.prompt_ids("Where should I stay in Paris?")
    plain = smollm2_engine.capture([ids], layers=[15])[0][0]
    with Steer(smollm2_engine.model, smollm2_engine.tokenizer) as steered:
        steered.add(15, 0.3, text="luxury")
        pushed = smollm2_engine.capture([ids], layers=[15])[0][0]
    push = (pushed - plain).norm(dim=-1)  # the same add at every position
    typical = float(plain[1:].norm(dim=-1).median())
    assert 100 < typical < 500
    assert float(push.max() - push.min()) < 1e-2 * float(push.mean())
    assert 0.3 * 0.5 * typical < float(push.mean()) < 0.3 * 2.0 * typical
    _, norm = text_vector(smollm2_engine, "luxury", layers=[15]).at(15)
    assert float(push.mean()) == pytest.approx(0.3 * norm, rel=1e-3)


def test_a_text_is_captured_unsteered(smollm2_engine: Engine) -> None:
    """The same text added twice on one layer gives the same vector both times."""
    with Steer(smollm2_engine.model, smollm2_engine.tokenizer) as steered:
        steered.add(15, 0.3, text="luxury")
        steered.add(15, 0.3, text="luxury")
        steered.add(18, 0.3, text="luxury")  # a vector upstream does not leak in either
        first, second, third = (e["text"] for e in steered.get_all())
        assert first == second == third == "luxury"
        vectors = [entry.vector for entry in steered._entries]
    torch.testing.assert_close(vectors[0], vectors[1])
    direction, norm = text_vector(smollm2_engine, "luxury", layers=[18]).at(18)
    torch.testing.assert_close(vectors[2], norm * direction / direction.norm())


def test_steer_search_and_library_make_one_vector(smollm2_engine: Engine) -> None:
    """Steer.add(text=), the search's text candidate and the library's vector agree."""
    layer = 15
    with Steer(smollm2_engine.model, smollm2_engine.tokenizer) as steered:
        steered.add(layer, 1.0, text="luxury")
        from_steer = steered._entries[0].vector
    spec = PlanBuilder(smollm2_engine).spec(CandidateVector(layer, 1.0, "luxury"))[0]
    from_search = spec.delta_vector()
    from_library = extract_text_vector(smollm2_engine, "luxury").direction(layer)
    torch.testing.assert_close(from_steer, from_search, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(from_steer, from_library, rtol=1e-4, atol=1e-3)
    assert float(from_steer.norm()) < 500

"""`engine.nll` against the log-likelihood computed with plain transformers, row by row."""

from __future__ import annotations

import pytest
import torch

from tests.tiny_models import FAMILIES, tiny_engine


def reference(engine, prompt: str, answer: str) -> tuple[float, int]:
    """One row, unpadded, every position's logits, log-softmax: the textbook computation."""
    if prompt == "":
        ids, start = engine.text_ids(answer), 1
    else:
        head = engine.prompt_ids(prompt)
        ids, start = head + engine.text_ids(answer, add_special_tokens=False), len(head)
    with torch.no_grad():
        logits = engine.model(input_ids=torch.tensor([ids])).logits[0].float()
    logp = torch.log_softmax(logits, dim=-1)
    targets = torch.tensor(ids[start:])
    total = -logp[start - 1 : len(ids) - 1].gather(-1, targets.view(-1, 1)).sum()
    return float(total), len(targets)


@pytest.mark.parametrize("family", FAMILIES)
def test_nll_equals_the_plain_computation(family: str) -> None:
    """Answers of different lengths after prompts of different lengths, in one padded batch,
    and a plain text: each scored as if alone (only the answers' logits are computed)."""
    engine = tiny_engine(family)
    prompts = ["plan a day", "a much longer question about where to go this weekend", "", "hi"]
    answers = ["a hostel", "a luxury suite with a spa and caviar and champagne", "free picnic", "x"]
    got = engine.nll(prompts, answers, batch_size=4)
    for (total, count), prompt, answer in zip(got, prompts, answers, strict=True):
        want_total, want_count = reference(engine, prompt, answer)
        assert count == want_count
        assert total == pytest.approx(want_total, rel=1e-4, abs=1e-3)

"""A local judge: any local instruct model scores an answer 0-100 for a trait or for coherence.

The score is the probability-weighted mean over the number tokens 0..100 of the judge's first
answer token (the steering guide's logprob aggregation); an answer is dropped (None) when those
tokens cover less than `min_mass` of the probability.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from steertui.search.batch import EvalBatch

TRAIT_PROMPT = (
    "Rate how strongly the answer below expresses this trait: {trait}.\n"
    "Question: {question}\nAnswer: {answer}\n"
    "Reply with one number from 0 (not at all) to 100 (completely), and nothing else."
)
COHERENCE_PROMPT = (
    "Rate the answer below for coherence: is it grammatical, fluent and on topic for the "
    "question?\nQuestion: {question}\nAnswer: {answer}\n"
    "Reply with one number from 0 (gibberish) to 100 (perfectly coherent), and nothing else."
)


def number_tokens(tokenizer: Any) -> dict[int, int]:
    """Token id -> the integer 0..100 it spells (with or without a leading space)."""
    out: dict[int, int] = {}
    for tid in range(len(tokenizer)):
        text = tokenizer.decode([tid]).strip()
        if text.isdigit() and text.isascii() and str(int(text)) == text and int(text) <= 100:
            out[tid] = int(text)
    return out


class LocalJudge:
    """Scores with one forward pass per batch of answers; runs unsteered on its engine."""

    def __init__(self, engine: Any, min_mass: float = 0.25, batch_size: int = 16) -> None:
        self.engine = engine
        self.min_mass = min_mass
        self.batch_size = batch_size
        table = number_tokens(engine.tokenizer)
        if not table:
            from steertui.errors import ConfigError

            raise ConfigError(f"judge model {engine.model_id!r} has no number tokens 0..100")
        self._ids = torch.tensor(sorted(table), dtype=torch.long)
        self._values = torch.tensor([float(table[i]) for i in sorted(table)])

    def prompt(self, question: str, answer: str, aspect: str, trait: str) -> str:
        template = COHERENCE_PROMPT if aspect == "coherence" else TRAIT_PROMPT
        return template.format(
            trait=trait or "the requested style", question=question, answer=answer
        )

    @torch.inference_mode()
    def scores(
        self,
        questions: Sequence[str],
        answers: Sequence[str],
        aspect: str = "trait",
        trait: str = "",
    ) -> list[float | None]:
        eng = self.engine
        rows = [
            eng.prompt_ids([{"role": "user", "content": self.prompt(q, a, aspect, trait)}])
            for q, a in zip(questions, answers, strict=True)
        ]
        pad = eng.tokenizer.pad_token_id or 0
        out: list[float | None] = []
        for lo in range(0, len(rows), self.batch_size):
            chunk = rows[lo : lo + self.batch_size]
            width = max(len(r) for r in chunk)
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for i, r in enumerate(chunk):
                ids[i, width - len(r) :] = torch.tensor(r)
                mask[i, width - len(r) :] = 1
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            dev = eng.device
            with eng.lock.hold("search"):
                logits = (
                    eng.model(
                        input_ids=ids.to(dev),
                        attention_mask=mask.to(dev),
                        position_ids=positions.to(dev),
                    )
                    .logits[:, -1, :]
                    .float()
                    .cpu()
                )
            probs = torch.softmax(logits, dim=-1)[:, self._ids]
            for p in probs:
                mass = float(p.sum())
                if mass < self.min_mass or mass == 0:
                    out.append(None)
                else:
                    out.append(float((p * self._values).sum() / mass))
        return out


def load_judge(name: str, device: str = "auto", engine: Any = None) -> LocalJudge:
    """The judge for `name`: the search's own model (`self` or its id) or another local model."""
    if engine is not None and name in ("self", str(engine.model_id)):
        return LocalJudge(engine)
    from steertui.engine import Engine, load_model

    return LocalJudge(Engine(load_model(name, device=device)))


@dataclass
class JudgeMetric:
    """Mean judge score (0-100) of each candidate's answers, for a trait or for coherence."""

    judge: LocalJudge
    trait: str = ""
    aspect: str = "trait"
    name: str = "judge"
    lower_is_better: bool = False

    def score(self, batch: EvalBatch) -> list[float]:
        outs = batch.outputs()
        questions = [q for _ in outs for q in batch.prompt_texts]
        answers = [a for row in outs for a in row]
        flat = self.judge.scores(questions, answers, self.aspect, self.trait)
        n = len(batch.prompt_texts)
        result = []
        for i in range(len(outs)):
            got = [s for s in flat[i * n : (i + 1) * n] if s is not None]
            result.append(sum(got) / len(got) if got else math.nan)
        return result


# ---- the probe judge: a dimension read off the model's own residual stream -------------------


@dataclass
class ProbeJudge:
    """A logistic probe on the model's residual stream at one layer, trained on a dimension's
    own contrastive examples (never on the prompts it judges) and read on generated answers.

    Training and reading pool the same way as vector extraction (`vectors.extract`: the chat
    template's prompt, then the answer's tokens, mean-pooled over the answer only). The layer is
    the one whose probe separates held-out pairs best; `accuracy` is that held-out accuracy.
    `read` gives each answer's probability of the positive pole (0..1).
    """

    dimension: str
    layer: int
    weight: torch.Tensor  # [H]
    bias: float
    mu: torch.Tensor  # [H]
    scale: float
    accuracy: float
    max_tokens: int = 64

    @classmethod
    def train(
        cls,
        engine: Any,
        dimension: Any,
        layer: int | None = None,
        holdout: float = 0.25,
        seed: int = 0,
        l2: float = 1e-2,
        max_tokens: int = 64,
    ) -> ProbeJudge:
        """Fit on `dimension.examples` (pairs). Pairs are split `holdout` for the layer choice and
        the accuracy; the returned probe is refit on every pair at the chosen layer."""
        from steertui.errors import VectorError
        from steertui.vectors.extract import answer_row, pool_rows

        examples = list(dimension.examples)
        if len(examples) < 8:
            raise VectorError(
                f"dimension {dimension.name!r}: a probe judge needs 8 or more examples, "
                f"got {len(examples)}"
            )
        pos_rows = [answer_row(engine, p, a, max_tokens) for p, a, _ in examples]
        neg_rows = [answer_row(engine, p, a, max_tokens) for p, _, a in examples]
        feats = pool_rows(engine, pos_rows + neg_rows).features  # [2N, L, H]
        n = len(examples)
        pos, neg = feats[:n], feats[n:]
        train, test = split_pairs(n, holdout, seed)
        acc = probe_heldout_accuracy(pos, neg, train, test, l2)  # [L]
        if layer is None:
            layer = pick_probe_layer(acc)
        layer = layer % feats.shape[1]
        w, b, mu, sc = _fit(pos[:, layer : layer + 1], neg[:, layer : layer + 1], l2)
        return cls(
            dimension=str(dimension.name),
            layer=layer,
            weight=w[0],
            bias=float(b[0]),
            mu=mu[0, 0],
            scale=float(sc[0, 0]),
            accuracy=float(acc[layer]),
            max_tokens=max_tokens,
        )

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """Probe logits of pooled activations `[N, H]` at the probe's layer."""
        return ((features.float() - self.mu) / self.scale) @ self.weight + self.bias

    def read(
        self, engine: Any, prompts: Sequence[Any], answers: Sequence[str]
    ) -> list[float | None]:
        """P(positive pole) of each answer to its prompt; None for an empty answer."""
        from steertui.vectors.extract import Row, pool_rows

        rows: list[Row] = []
        where: list[int] = []
        for i, (prompt, answer) in enumerate(zip(prompts, answers, strict=True)):
            head = list(engine.prompt_ids(prompt))
            tail = list(engine.text_ids(answer, add_special_tokens=False))[: self.max_tokens]
            if tail:
                rows.append(Row(head + tail, len(head), len(head) + len(tail)))
                where.append(i)
        out: list[float | None] = [None] * len(answers)
        if rows:
            feats = pool_rows(engine, rows, batch_size=16).features[:, self.layer]
            probs = torch.sigmoid(self.logits(feats))
            for i, p in zip(where, probs.tolist(), strict=True):
                out[i] = float(p)
        return out


def split_pairs(n: int, holdout: float = 0.25, seed: int = 0) -> tuple[list[int], list[int]]:
    """Pair indices split into train and held-out (a pair's two answers stay together)."""
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=gen).tolist()
    n_test = max(2, round(n * holdout))
    return sorted(perm[n_test:]), sorted(perm[:n_test])


def _fit(
    pos: torch.Tensor, neg: torch.Tensor, l2: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    from steertui.vectors.methods import train_probe

    return train_probe(pos, neg, l2=l2)


def probe_heldout_accuracy(
    pos: torch.Tensor, neg: torch.Tensor, train: list[int], test: list[int], l2: float = 1e-2
) -> torch.Tensor:
    """Per-layer accuracy `[L]` on the held-out pairs of a probe fit on the training pairs, on
    uncentred activations (a generated answer has no contrast pair to centre on)."""
    from steertui.vectors.methods import probe_accuracy

    model = _fit(pos[train], neg[train], l2)
    return probe_accuracy(model, pos[test], neg[test])


def pick_probe_layer(accuracy: torch.Tensor) -> int:
    """The most accurate layer, never the first or last; ties go to the shallower layer."""
    n = accuracy.shape[0]
    candidates = list(range(1, n - 1)) if n >= 3 else list(range(n))
    return max(candidates, key=lambda i: (round(float(accuracy[i]), 3), -i))


@dataclass
class ProbeMetric:
    """A dimension's probe judge as a search metric: mean P(pole) of the answers, 0-100."""

    probe: ProbeJudge
    pole: str = "positive"
    name: str = "probe"
    lower_is_better: bool = False

    def score(self, batch: EvalBatch) -> list[float]:
        outs = batch.outputs()
        prompts = [p for _ in outs for p in batch.prompt_inputs]
        flat = self.probe.read(batch.engine, prompts, [a for row in outs for a in row])
        n = len(batch.prompt_inputs)
        result = []
        for i in range(len(outs)):
            got = [p for p in flat[i * n : (i + 1) * n] if p is not None]
            mean = sum(got) / len(got) if got else math.nan
            result.append(100.0 * (mean if self.pole == "positive" else 1.0 - mean))
        return result

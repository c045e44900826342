"""Per-layer quality of a dimension, and which layers to steer.

- `accuracy[L]`: a logistic probe trained on a split of the data, scored on the held-out rest
  (pairs stay together, so an answer and its contrast are never split across train and test).
  Paired examples are centred on their pair's mean first, so the probe has to find the pole
  and not the topic: two answers to one prompt share most of their activation, and the topic
  varies far more between prompts than the pole does within one.
- `separation[L]`: Cohen's d of the two classes' projections on the direction at L (for pairs,
  the paired d: mean over standard deviation of the projected differences).
- recommended layers: the top-k by (accuracy, separation), k scaled to depth like the SteerLab
  paper's 16-32 of 26-42 layers (about 60%), at least 1. The layers where the two class means
  project with opposite signs (Selective Steering's rule) are recorded as well.
- default functional range: `DEFAULT_TOTAL_PUSH / k`. Each steered layer adds `c * norm[L]`
  to the residual stream and the additions accumulate down the stack, so the knob's end adds
  about `DEFAULT_TOTAL_PUSH` typical activations in all (0.3: on the toy model a larger push
  starts to move the other dimensions and then to break the text). The adaptive search replaces it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from steertui.vectors.methods import centre_pairs, probe_accuracy, train_probe

TOP_K_FRACTION = 0.6
DEFAULT_TOTAL_PUSH = 0.3
HOLDOUT_FRACTION = 0.25
MIN_HOLDOUT = 2


@dataclass
class LayerQuality:
    accuracy: list[float | None]
    separation: list[float]
    train_accuracy: list[float]
    opposite_sign_layers: list[int]


def _split(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=gen)
    n_test = max(MIN_HOLDOUT, round(n * HOLDOUT_FRACTION))
    return perm[n_test:], perm[:n_test]


def heldout_accuracy(
    pos: torch.Tensor, neg: torch.Tensor, paired: bool, seed: int = 0
) -> list[float | None]:
    """Probe accuracy per layer on a held-out split; None where there is too little data."""
    if min(pos.shape[0], neg.shape[0]) < 2 * MIN_HOLDOUT:
        return [None] * pos.shape[1]
    if paired:
        pos, neg = centre_pairs(pos, neg)
        train, test = _split(pos.shape[0], seed)
        ptr, pte, ntr, nte = pos[train], pos[test], neg[train], neg[test]
    else:
        ptrain, ptest = _split(pos.shape[0], seed)
        ntrain, ntest = _split(neg.shape[0], seed + 1)
        ptr, pte, ntr, nte = pos[ptrain], pos[ptest], neg[ntrain], neg[ntest]
    model = train_probe(ptr, ntr)
    return [float(a) for a in probe_accuracy(model, pte, nte)]


def cohens_d(pos: torch.Tensor, neg: torch.Tensor, dirs: torch.Tensor) -> list[float]:
    """Separation of the classes along each layer's direction, in pooled standard deviations."""
    unit = dirs / dirs.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    pp = torch.einsum("nlh,lh->nl", pos, unit)
    pn = torch.einsum("nlh,lh->nl", neg, unit)
    var_p = pp.var(0, unbiased=True) if pos.shape[0] > 1 else torch.zeros(pp.shape[1])
    var_n = pn.var(0, unbiased=True) if neg.shape[0] > 1 else torch.zeros(pn.shape[1])
    pooled = ((var_p + var_n) / 2).sqrt().clamp_min(1e-6)
    return [float(x) for x in (pp.mean(0) - pn.mean(0)) / pooled]


def paired_d(pos: torch.Tensor, neg: torch.Tensor, dirs: torch.Tensor) -> list[float]:
    """Mean over standard deviation of the pairs' projected differences, per layer."""
    unit = dirs / dirs.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    diff = torch.einsum("nlh,lh->nl", pos - neg, unit)
    std = diff.std(0, unbiased=True) if diff.shape[0] > 1 else torch.ones(diff.shape[1])
    return [float(x) for x in diff.mean(0) / std.clamp_min(1e-6)]


def opposite_sign_layers(pos: torch.Tensor, neg: torch.Tensor, dirs: torch.Tensor) -> list[int]:
    """Layers where the positive mean projects above zero and the negative mean below."""
    unit = dirs / dirs.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    mp = torch.einsum("lh,lh->l", pos.mean(0), unit)
    mn = torch.einsum("lh,lh->l", neg.mean(0), unit)
    return [i for i in range(dirs.shape[0]) if mp[i] > 0 > mn[i]]


def measure(pos: torch.Tensor, neg: torch.Tensor, dirs: torch.Tensor, paired: bool) -> LayerQuality:
    tp, tn = centre_pairs(pos, neg) if paired else (pos, neg)
    train_acc = [float(a) for a in probe_accuracy(train_probe(tp, tn), tp, tn)]
    return LayerQuality(
        accuracy=heldout_accuracy(pos, neg, paired),
        separation=paired_d(pos, neg, dirs) if paired else cohens_d(pos, neg, dirs),
        train_accuracy=train_acc,
        opposite_sign_layers=opposite_sign_layers(pos, neg, dirs),
    )


def top_k(n_layers: int) -> int:
    return max(1, round(n_layers * TOP_K_FRACTION))


def recommend_layers(
    accuracy: Sequence[float | None], separation: Sequence[float], k: int | None = None
) -> list[int]:
    """The top-k layers by held-out accuracy, ties broken by separation; sorted by index.

    The last layer is left out when the model has four or more: a push there goes straight
    into the unembedding and reads as noise rather than as a shift of meaning.
    """
    n = len(separation)
    k = top_k(n) if k is None else k
    candidates = list(range(n - 1)) if n >= 4 else list(range(n))
    k = min(k, len(candidates))

    def key(layer: int) -> tuple[float, float]:
        acc = accuracy[layer] if layer < len(accuracy) else None
        sep = separation[layer]
        return (round(acc, 3) if acc is not None else -1.0, sep if math.isfinite(sep) else -1e9)

    ranked = sorted(candidates, key=key, reverse=True)
    return sorted(ranked[:k])


def default_c_max(n_recommended: int, push: float | None = None) -> float:
    """Per-layer coefficient of a knob at +100: the full-scale push spread over the layers."""
    total = DEFAULT_TOTAL_PUSH if push is None else push
    return round(total / max(1, n_recommended), 4)

"""Direction-finding methods on pooled activations, all layers at once, float32.

Inputs are `[N, L, H]` tensors of pooled residual activations (N samples, L layers, H hidden).
Every method returns `[L, H]` directions pointing from the negative pole to the positive one.
"""

from __future__ import annotations

import torch

from steertui.engine.text_vector import difference_of_means
from steertui.errors import VectorError

METHODS = ("diffmean", "pca", "probe", "text")


def diffmean(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """Difference of class means (CAA)."""
    return pos.mean(0) - neg.mean(0)


def pca_of_differences(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """First principal axis of the paired differences, sign aligned with the mean difference.

    The differences are not centred: the shared shift between poles is the signal, and
    centring would remove it (it is the mean difference itself).
    """
    if pos.shape != neg.shape:
        raise VectorError(
            f"pca needs paired examples: got {pos.shape[0]} positive and {neg.shape[0]} negative"
        )
    diffs = (pos - neg).transpose(0, 1)  # [L, N, H]
    _, _, vh = torch.linalg.svd(diffs, full_matrices=False)
    axis = vh[:, 0, :]  # [L, H], unit
    mean = diffs.mean(1)
    sign = torch.sign((axis * mean).sum(-1, keepdim=True))
    sign[sign == 0] = 1.0
    return axis * sign


def _standardise(
    x: torch.Tensor, ref: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Centre per layer and divide by the mean sample norm, so one regulariser fits all layers."""
    ref = x if ref is None else ref
    mu = ref.mean(0, keepdim=True)
    scale = (ref - mu).norm(dim=-1).mean(0, keepdim=True).clamp_min(1e-6)  # [1, L]
    return (x - mu) / scale.unsqueeze(-1), mu, scale


def train_probe(
    pos: torch.Tensor, neg: torch.Tensor, l2: float = 1e-4, iters: int = 1000
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """L2-regularised logistic regression per layer, every layer at once (they are independent).

    Nesterov-accelerated gradient descent with the step from the loss's Lipschitz constant: the
    problem is strongly convex, so a few hundred steps converge, deterministically. The weights
    stay in the span of the samples (they start at 0), so the iteration runs on one coefficient
    per sample against the Gram matrix: cost N x N per step instead of N x H.

    Returns (weights [L, H], bias [L], mu [1, L, H], scale [1, L]): the logit of a sample `x`
    at layer l is `w[l] . (x[l] - mu[l]) / scale[l] + b[l]`.
    """
    x = torch.cat([pos, neg]).float()
    y = torch.cat([torch.ones(pos.shape[0]), torch.zeros(neg.shape[0])])
    xs, mu, scale = _standardise(x)
    xs = xs.transpose(0, 1)  # [L, N, H]
    n_layers, n, hidden = xs.shape
    xa = torch.cat([xs, torch.ones(n_layers, n, 1)], dim=-1)  # bias as a last feature
    gram = xa @ xa.transpose(1, 2)  # [L, N, N]
    smax2 = torch.linalg.eigvalsh(gram)[:, -1].clamp_min(0)  # largest singular value squared
    step = (1.0 / (0.25 * smax2 / n + l2)).unsqueeze(-1)
    alpha = torch.zeros(n_layers, n)  # w = xa^T alpha
    prev = alpha
    for k in range(iters):
        look = alpha + (k / (k + 3)) * (alpha - prev)
        resid = torch.sigmoid(torch.einsum("lmn,ln->lm", gram, look)) - y
        prev, alpha = alpha, look - step * (resid / n + l2 * look)
    w = torch.einsum("lnh,ln->lh", xa, alpha)
    return w[:, :hidden].contiguous(), w[:, hidden].contiguous(), mu, scale


def probe_accuracy(
    model: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    pos: torch.Tensor,
    neg: torch.Tensor,
) -> torch.Tensor:
    """Per-layer accuracy `[L]` of a trained probe on (pos, neg)."""
    w, b, mu, scale = model
    x = torch.cat([pos, neg]).float()
    y = torch.cat([torch.ones(pos.shape[0]), torch.zeros(neg.shape[0])])
    xs = ((x - mu) / scale.unsqueeze(-1)).transpose(0, 1)
    logits = torch.einsum("lnh,lh->ln", xs, w) + b.unsqueeze(-1)
    return ((logits > 0).float() == y.unsqueeze(0)).float().mean(1)


def probe(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """The probe's weight vector as the direction (the SteerLab paper's choice)."""
    w, _, _, scale = train_probe(pos, neg)
    # the probe sees (x - mu) / scale[l]: the raw-space direction is w / scale, same axis
    return w / scale.squeeze(0).unsqueeze(-1)


def text_direction(pos: torch.Tensor, neg: torch.Tensor | None) -> torch.Tensor:
    """AutoSteer's text vector: mean activation of the texts minus the negative texts' (an
    absent side counts as zero); the engine's one definition, `difference_of_means`."""
    return difference_of_means(pos, neg)


def centre_pairs(pos: torch.Tensor, neg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Subtract each pair's mean (repeng's pca_center): what is left is the pole, not the topic."""
    centre = (pos + neg) / 2
    return pos - centre, neg - centre


def directions(
    method: str, pos: torch.Tensor, neg: torch.Tensor | None, paired: bool = False
) -> torch.Tensor:
    """`[L, H]` directions by `method`; see `METHODS`. Paired data trains the probe on
    pair-centred activations."""
    if method == "text":
        return text_direction(pos, neg)
    if neg is None or neg.shape[0] == 0:
        raise VectorError(f"method {method!r} needs negative examples; use method 'text'")
    if method == "diffmean":
        return diffmean(pos, neg)
    if method == "pca":
        return pca_of_differences(pos, neg)
    if method == "probe":
        if paired:
            pos, neg = centre_pairs(pos, neg)
        return probe(pos, neg)  # the weight points to the positive class by construction
    raise VectorError(f"unknown method {method!r}: expected one of {', '.join(METHODS)}")

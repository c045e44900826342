"""A short fingerprint of a model's weights, so a vector built on one set of weights is never
reused on another that shares its name (the toy retrained in place, a hub model's new revision,
a local folder overwritten).

It hashes each parameter's name and shape and 64 values spread evenly over it, rounded to
bfloat16: the same weights loaded in float32 or bfloat16 give the same fingerprint, and any
retraining changes it. One small read per parameter: 5 ms for SmolLM2-135M's 272 tensors on a
CPU, computed once per loaded model.
"""

from __future__ import annotations

import hashlib

import torch
from torch import nn

SAMPLES_PER_PARAMETER = 64


def weights_fingerprint(model: nn.Module) -> str:
    digest = hashlib.sha256()
    with torch.no_grad():
        for name, param in model.named_parameters():
            digest.update(f"{name}{tuple(param.shape)};".encode())
            if param.device.type == "meta" or param.numel() == 0:
                continue  # offloaded by accelerate: its name and shape still count
            flat = param.detach().reshape(-1)
            sample = flat[:: max(1, flat.numel() // SAMPLES_PER_PARAMETER)][:SAMPLES_PER_PARAMETER]
            rounded = sample.to(torch.float32).to(torch.bfloat16).view(torch.int16)
            digest.update(rounded.cpu().numpy().tobytes())
    return digest.hexdigest()[:16]

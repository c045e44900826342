"""How one steering direction acts on the residual stream: the steering methods.

Every method takes, per batch row, a unit direction `u`, a coefficient `c` (DESIGN.md's unit)
and the layer's typical residual norm `s`, and changes each position's residual `h`:

- `add`: `h + c*s*u`, the same push at every position (what steering always was).
- `clamp`: the component along `u` is raised to the target `c*s` and no further: a position
  that already reaches the target (on the side of `c`'s sign) is left as it is; one short of it
  is moved exactly onto it. Never overshoots.
- `rotate`: `h` is turned toward `sign(c)*u` in the plane of the two by the angle `atan(|c|)`
  (the angle an `add` of `c*s*u` turns a residual of norm `s` perpendicular to `u`), never past
  `u`; the norm of `h` is kept.
- `adaptive`: `add`, with a per-position strength `2*sigmoid(-sign(c)*cos(h, u)/LEAN)`: 1 for
  a position with no lean, toward 0 as it already leans along the push, up to 2 as it leans
  against it.

Coefficient 0 changes nothing, exactly, for each. `add` runs inside the compiled decode step
(a live addend); the others need the residual, and run in the eager hook.
"""

from __future__ import annotations

import math
from typing import Literal, cast

import torch

Method = Literal["add", "clamp", "rotate", "adaptive"]
METHODS: tuple[Method, ...] = ("add", "clamp", "rotate", "adaptive")
LEAN = 0.1  # adaptive: the cosine at which the strength has fallen to 2*sigmoid(-1) = 0.54


def check_method(value: str, what: str = "steering method") -> Method:
    """`value` as a `Method`, or `ValueError` naming the known ones."""
    if value not in METHODS:
        raise ValueError(f"{what} {value!r} is not known: expected one of {', '.join(METHODS)}")
    return cast(Method, value)


def rotate_angle(coeff: float) -> float:
    """The angle (radians) `rotate` turns by at coefficient `coeff`."""
    return math.atan(abs(coeff))


def apply(
    method: Method,
    hidden: torch.Tensor,
    unit: torch.Tensor,
    coeff: torch.Tensor,
    scale: torch.Tensor,
    keep: torch.Tensor | None = None,
) -> torch.Tensor:
    """`hidden` `[B, T, H]` steered by one direction per row: `unit` `[B, H]` (unit norm),
    `coeff` and `scale` `[B]`; `keep` `[B, T]` bool says which positions are steered (None:
    all). Computed in float32, returned in `hidden`'s dtype; rows whose coefficient is 0 and
    positions not kept come back bit for bit."""
    h = hidden.float()
    u = unit.float().to(h.device).unsqueeze(1)  # [B, 1, H]
    c = coeff.float().to(h.device).view(-1, 1)  # [B, 1]
    s = scale.float().to(h.device).view(-1, 1)
    sign = torch.sign(c)
    proj = (h * u).sum(-1)  # [B, T]
    if method == "add":
        delta = (c * s).unsqueeze(-1) * u
    elif method == "clamp":
        gap = c * s - proj
        delta = (sign * torch.relu(sign * gap)).unsqueeze(-1) * u
    elif method == "adaptive":
        norm = h.norm(dim=-1).clamp_min(1e-12)
        strength = 2 * torch.sigmoid(-sign * (proj / norm) / LEAN)
        delta = (c * s * strength).unsqueeze(-1) * u
    elif method == "rotate":
        delta = _rotation(h, u, c, sign, proj)
    else:
        raise ValueError(f"steering method {method!r} is not known")
    active = (c != 0).to(h.dtype).unsqueeze(-1)  # [B, 1, 1]
    if keep is not None:
        active = active * keep.to(h.device, h.dtype).unsqueeze(-1)
    return torch.where(active > 0, (h + delta).to(hidden.dtype), hidden)


def _rotation(
    h: torch.Tensor, u: torch.Tensor, c: torch.Tensor, sign: torch.Tensor, proj: torch.Tensor
) -> torch.Tensor:
    """The change that turns `h` toward `sign*u` by `atan(|c|)`, norm kept, never past it."""
    v = sign.unsqueeze(-1) * u  # the pole's direction, [B, 1, H]
    norm = h.norm(dim=-1)  # [B, T]
    along = sign * proj  # h . v
    cos_a = (along / norm.clamp_min(1e-12)).clamp(-1.0, 1.0)
    alpha = torch.acos(cos_a)  # the angle from h to v
    theta = torch.minimum(torch.atan(c.abs()).expand_as(alpha), alpha)
    perp = h - along.unsqueeze(-1) * v
    perp_unit = perp / perp.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    rest = alpha - theta
    turned = norm.unsqueeze(-1) * (
        torch.cos(rest).unsqueeze(-1) * v + torch.sin(rest).unsqueeze(-1) * perp_unit
    )
    return turned - h

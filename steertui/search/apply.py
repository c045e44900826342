"""A run's best configuration written out three ways: Python (`from steertui import Steer`),
TOML (a `[[steer]]` list), and a `steertui generate` command line; and `best_to_knobs`, the
one rule that turns a run's best into the app's knobs."""

from __future__ import annotations

import math
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from steertui.search.space import DEFAULT_SCHEDULE_PARAMS, CandidateVector, SteerCandidate

_CLASSES = {"decay": "DecaySchedule", "cosine": "CosineSchedule", "warmup": "WarmupSchedule"}

VectorPath = Callable[[str], str | None]
"""Dimension name -> its vector file for the run's model (None when not built)."""


def _schedule_call(kind: str) -> str | None:
    if kind not in _CLASSES:
        return None
    args = ", ".join(f"{k}={v!r}" for k, v in DEFAULT_SCHEDULE_PARAMS[kind].items())
    return f"{_CLASSES[kind]}({args})"


def as_python(cand: SteerCandidate, model: str, vector_path: VectorPath) -> str:
    classes = sorted({_CLASSES[v.schedule] for v in cand.vectors if v.schedule in _CLASSES})
    dims = sorted({v.source for v in cand.vectors if v.kind == "dimension"})
    lines = ["from transformers import AutoModelForCausalLM, AutoTokenizer", ""]
    lines.insert(0, "from steertui import " + ", ".join(["Steer", *classes]))
    if dims:
        lines.insert(1, "from steertui.vectors.file import SteeringVector")
    if model == "toy":
        lines.insert(1, "from steertui.toy import toy_model_path")
        lines.append("name = toy_model_path()")
    else:
        lines.append(f"name = {model!r}")
    lines += [
        "model = AutoModelForCausalLM.from_pretrained(name)",
        "tokenizer = AutoTokenizer.from_pretrained(name)",
        "",
    ]
    for d in dims:
        lines.append(
            f"{_ident(d)} = SteeringVector.load({vector_path(d) or f'<vector file of {d}>'!r})"
        )
    lines.append("steered = Steer(model, tokenizer)")
    for v in cand.vectors:
        what = f"text={v.source!r}" if v.kind == "text" else f"vector={_ident(v.source)}"
        sched = _schedule_call(v.schedule)
        extra = f", coeff_schedule={sched}" if sched else ""
        lines.append(f"steered.add(layer_idx={v.layer}, coeff={v.coeff!r}, {what}{extra})")
    return "\n".join(lines)


def _ident(name: str) -> str:
    out = "".join(c if c.isalnum() else "_" for c in name)
    return f"vec_{out}"


def _toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def as_toml(cand: SteerCandidate, model: str) -> str:
    lines = [f"model = {_toml_str(model)}", ""]
    for v in cand.vectors:
        lines += [
            "[[steer]]",
            f"layer = {v.layer}",
            f"coeff = {v.coeff!r}",
            f"{'text' if v.kind == 'text' else 'dimension'} = {_toml_str(v.source)}",
            f"schedule = {_toml_str(v.schedule)}",
            "",
        ]
    return "\n".join(lines).rstrip() + "\n"


def as_command(
    cand: SteerCandidate,
    model: str,
    vector_path: VectorPath,
    knobs: dict[str, float] | None = None,
    prompt: str = "Your prompt here",
) -> str:
    """`steertui generate --model M [--steer DIM=VALUE] [--vector FILE:LAYER:COEFF[:SCHEDULE]]
    [--text TEXT:LAYER:COEFF[:SCHEDULE]] --prompt PROMPT`: the candidate, replayable as is.

    `knobs` (dimension -> knob value) become `--steer`; other dimension vectors become exact
    `--vector` flags and text vectors `--text` flags (the same text vector the search read)."""
    parts = ["steertui", "generate", "--model", model]
    for dim, value in (knobs or {}).items():
        parts += ["--steer", f"{dim}={value:g}"]
    for v in cand.vectors:
        sched = "" if v.schedule == "constant" else f":{v.schedule}"
        if v.kind == "text":
            parts += ["--text", f"{v.source}:{v.layer}:{v.coeff!r}{sched}"]
        elif not knobs or v.source not in knobs:
            path = vector_path(v.source) or f"<vector file of {v.source}>"
            parts += ["--vector", f"{path}:{v.layer}:{v.coeff!r}{sched}"]
    parts += ["--prompt", prompt]
    return " ".join(shlex.quote(p) for p in parts)


@dataclass(frozen=True)
class KnobSetting:
    """A dimension vector of a run's best on the knob scale (`100 * coeff / c_max`), not clamped
    to -100..100 (a best beyond the functional range stays as strong as it was found), with the
    layer and schedule it was found at."""

    dimension: str
    knob: float
    layer: int
    schedule: str = "constant"


@dataclass(frozen=True)
class RunSteering:
    """A run's best as the app applies it: dimension vectors as knob settings (each keeps its
    layer and schedule), text vectors as they are, and dimension vectors with no known
    functional range (not loaded) left as they are too."""

    knobs: tuple[KnobSetting, ...] = ()
    texts: tuple[CandidateVector, ...] = ()
    unscaled: tuple[CandidateVector, ...] = ()

    def knob_values(self) -> dict[str, float]:
        """Dimension -> knob value (a dimension's vectors at several layers add up)."""
        out: dict[str, float] = {}
        for k in self.knobs:
            out[k.dimension] = out.get(k.dimension, 0.0) + k.knob
        return out

    def describe_left(self) -> list[str]:
        """What is applied other than through a knob, one phrase each."""
        return [v.describe() for v in (*self.texts, *self.unscaled)]


def best_to_knobs(
    best: SteerCandidate | Mapping[str, Any] | None, c_max: Mapping[str, float]
) -> RunSteering:
    """A run's best candidate (a `SteerCandidate` or the store's dict) as `RunSteering`.

    `c_max` is each loaded dimension's functional range for the model (the knob's full scale).
    The one rule for "apply a run's best", used by the app and by `steertui runs apply`."""
    cand = best if isinstance(best, SteerCandidate) else SteerCandidate.from_dict(dict(best or {}))
    knobs: list[KnobSetting] = []
    texts: list[CandidateVector] = []
    unscaled: list[CandidateVector] = []
    for v in cand.vectors:
        if v.kind == "text":
            texts.append(v)
            continue
        scale = c_max.get(v.source)
        if scale is None or not math.isfinite(scale) or scale <= 0:
            unscaled.append(v)
            continue
        knobs.append(KnobSetting(v.source, 100.0 * v.coeff / scale, v.layer, v.schedule))
    return RunSteering(tuple(knobs), tuple(texts), tuple(unscaled))

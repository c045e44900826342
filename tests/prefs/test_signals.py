"""The model as LEARN's second signal: trusted only when it passes its anchor check."""

from __future__ import annotations

from steertui.prefs import Learner, ModelSignals, build_cues
from steertui.prefs.signals import UNSATISFIED_ANCHORS
from steertui.store import Store

COST = build_cues("cost", "budget", "luxury")


class JudgeEngine:
    """`nll` of " yes"/" no" after the satisfaction question; `sensible` says it reads replies."""

    def __init__(self, sensible: bool) -> None:
        self.sensible = sensible

    def nll(self, prompts, answers):
        out = []
        for prompt, answer in zip(prompts, answers, strict=True):
            unhappy = any(w in prompt.lower() for w in ("no,", "wrong", "ugh", "pricey"))
            if not self.sensible:
                unhappy = False
            says_no = answer.strip() == "no"
            out.append((0.2 if says_no == unhappy else 3.0, 1))
        return out


def test_a_model_that_fails_the_anchors_is_ignored() -> None:
    signals = ModelSignals(JudgeEngine(sensible=False), {})
    assert not signals.satisfaction_reliable
    assert signals.dissatisfaction("too pricey") is None


def test_a_reliable_model_is_averaged_with_the_lexicon(tmp_path) -> None:
    signals = ModelSignals(JudgeEngine(sensible=True), {})
    assert signals.satisfaction_reliable and len(UNSATISFIED_ANCHORS) >= 3
    p = signals.dissatisfaction("too pricey")
    assert p is not None and p > 0.9
    with Store.open(tmp_path / "s.db") as store:
        update = Learner(store, [COST], signals=signals).reply("too pricey")
    a = update.assessment
    assert a.lexicon_dissatisfaction == 0.75 and a.model_dissatisfaction == p
    assert a.dissatisfaction == (0.75 + p) / 2
    assert update.after["cost"] == -25.0 * a.dissatisfaction

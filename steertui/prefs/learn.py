"""LEARN: move the profile from how the user reacts to answers.

Every reaction gives a dissatisfaction `s` in [0, 1] and, per dimension, a direction `r` in
{-1, 0, +1}; the update is `d <- clip(d + STEP * s * r, -100, 100)` with `STEP = 25` knob
points, so one clear complaint ("too pricey", s = 0.75) moves a dimension about 19 points and a
mild one ("a bit too pricey", s = 0.375) about 9.

Where the signals come from:
- a reply: the lexicon reading (`prefs.reading`) decides directions whenever it finds a cue.
  When it finds none, the model's projection of the reply fills in, for the one dimension the
  reply is most clearly about, with the reply's own pull word ("too", "more", ...) for the
  sign. Dissatisfaction is the lexicon's, averaged 50/50 with the model's p(not satisfied)
  when the model passed its reliability check. A complaint with no direction at all ("this is
  terrible") falls back to the answer, as a thumbs down does.
- thumbs up: s = 0, nothing moves (recorded as reinforcement).
- thumbs down: s = 0.75 (the paper's value for a certain negative); each dimension moves away
  from what the answer expressed when that lies more than 20 points beyond the current value.
  What the answer expressed: its cue words (lexicon), averaged with the model's projection of
  the answer when that is reliable (the model alone when the answer has no cue words).
- regenerate: s = 0.25 (the paper's neutral), moving only dimensions the answer expressed more
  than 50 points beyond the current value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from steertui.errors import ConfigError
from steertui.prefs.cues import DimensionCues, cues_for, words
from steertui.prefs.history import tag_reason, undo_last_update
from steertui.prefs.knobs import clamp_knob
from steertui.prefs.profile import starting_knobs
from steertui.prefs.reading import (
    AWAY,
    NEUTRAL_DISSATISFACTION,
    TOWARDS,
    expressed,
    read_reply,
)

STEP = 25.0
THUMBS_DOWN_DISSATISFACTION = 0.75
REGENERATE_DISSATISFACTION = 0.25
THUMBS_DOWN_MARGIN = 20.0
REGENERATE_MARGIN = 50.0
MODEL_FILL_IN = 0.6  # how clearly (on -1..1) a reply must be about a pole for the model to decide

Kind = Literal["reply", "thumbs_up", "thumbs_down", "regenerate"]
KINDS: tuple[str, ...] = ("reply", "thumbs_up", "thumbs_down", "regenerate")


@dataclass(frozen=True)
class Assessment:
    """What one reaction says: how unhappy, which way per dimension, and where that came from."""

    kind: str
    text: str
    dissatisfaction: float
    directions: dict[str, int]
    sources: dict[str, str] = field(default_factory=dict)
    lexicon_dissatisfaction: float | None = None
    model_dissatisfaction: float | None = None
    is_reaction: bool = True  # False for a chat message that neither asks for a pole nor judges


@dataclass(frozen=True)
class LearnUpdate:
    """An applied reaction: the knobs before and after and the feedback row it was saved as."""

    assessment: Assessment
    before: dict[str, float]
    after: dict[str, float]
    feedback_id: int | None = None

    @property
    def deltas(self) -> dict[str, float]:
        return {d: self.after[d] - self.before[d] for d in self.after}

    @property
    def moved(self) -> dict[str, float]:
        return {d: v for d, v in self.deltas.items() if v}


def apply_update(
    values: Mapping[str, float],
    dissatisfaction: float,
    directions: Mapping[str, int],
    step: float = STEP,
) -> dict[str, float]:
    """`d <- clip(d + step * dissatisfaction * direction, -100, 100)` for every dimension."""
    s = max(0.0, min(1.0, float(dissatisfaction)))
    return {d: clamp_knob(v + step * s * int(directions.get(d, 0))) for d, v in values.items()}


INTENSIFIERS = frozenset(
    {"bit", "little", "much", "way", "lot", "even", "slightly", "somewhat", "far"}
)


def _comparative(tokens: Sequence[str], i: int) -> bool:
    """Whether tokens[i] is used as a comparative ("fancier than", "a bit quieter"): a word that
    merely ends in -er ("after", "dinner", "other") asks for nothing."""
    if len(tokens[i]) < 5 or not tokens[i].endswith("er"):
        return False
    after = tokens[i + 1] if i + 1 < len(tokens) else ""
    before = tokens[i - 1] if i > 0 else ""
    return after == "than" or before in INTENSIFIERS


def _pull_word(text: str) -> int:
    """+1 if the reply asks for more of something, -1 for less/too, 0 if neither."""
    tokens = words(text)
    if any(t in AWAY for t in tokens):
        return -1
    if any(t in TOWARDS for t in tokens) or any(
        _comparative(tokens, i) for i in range(len(tokens))
    ):
        return 1
    return 0


class Learner:
    """Turns reactions into profile updates saved in the store (mode 'learn').

    `dimensions`: Dimension objects (or `DimensionCues`) of the dimensions that can move.
    `signals`: an optional `ModelSignals` over the loaded model; without it only the lexicon
    is used. `step`: knob points for a fully dissatisfied reaction.
    """

    def __init__(
        self,
        store: Any,
        dimensions: Sequence[Any],
        signals: Any = None,
        step: float = STEP,
    ) -> None:
        self.store = store
        self.cues: list[DimensionCues] = [cues_for(d) for d in dimensions]
        self.names = [c.name for c in self.cues]
        self.signals = signals
        self.step = float(step)

    def knobs(self) -> dict[str, float]:
        """The current profile values of the learner's dimensions (0 where unset)."""
        return starting_knobs(self.store, self.names)

    # ---- assessment ---------------------------------------------------------------------
    def expressed(self, answer: str, prompt: Any = None) -> dict[str, float]:
        """Where an answer sits per dimension (-100..100), from its words and the model."""
        placed = self.signals.placements(answer, prompt) if self.signals and answer else {}
        out = {}
        for cues in self.cues:
            lex = expressed(answer, cues)
            model = placed.get(cues.name)
            model = None if model is None else 100.0 * max(-1.0, min(1.0, model))
            if lex is not None and model is not None:
                out[cues.name] = (lex + model) / 2
            elif lex is not None or model is not None:
                out[cues.name] = lex if lex is not None else float(model)  # type: ignore[arg-type]
        return out

    def _away_from_answer(
        self, answer: str, knobs: Mapping[str, float], margin: float
    ) -> tuple[dict[str, int], dict[str, str]]:
        directions: dict[str, int] = {}
        sources: dict[str, str] = {}
        for name, where in self.expressed(answer).items():
            beyond = where - knobs.get(name, 0.0)
            if abs(beyond) > margin:
                directions[name] = -1 if beyond > 0 else 1
                sources[name] = "answer"
        return directions, sources

    def assess(
        self, kind: str, text: str = "", answer: str = "", knobs: Mapping[str, float] | None = None
    ) -> Assessment:
        """Read one reaction without saving anything."""
        if kind not in KINDS:
            raise ConfigError(
                f"reaction kind {kind!r} is unknown; expected one of {', '.join(KINDS)}"
            )
        knobs = dict(knobs) if knobs is not None else self.knobs()
        zero = dict.fromkeys(self.names, 0)
        if kind == "thumbs_up":
            return Assessment(kind, text, 0.0, zero)
        if kind in ("thumbs_down", "regenerate"):
            margin = THUMBS_DOWN_MARGIN if kind == "thumbs_down" else REGENERATE_MARGIN
            s = THUMBS_DOWN_DISSATISFACTION if kind == "thumbs_down" else REGENERATE_DISSATISFACTION
            directions, sources = (
                self._away_from_answer(answer, knobs, margin) if answer else ({}, {})
            )
            return Assessment(kind, text, s, {**zero, **directions}, sources)
        return self._assess_reply(text, answer, knobs, zero)

    def _assess_reply(
        self, text: str, answer: str, knobs: Mapping[str, float], zero: dict[str, int]
    ) -> Assessment:
        reading = read_reply(text, self.cues)
        if not (reading.asks or reading.judges or _pull_word(text)):
            # a new request that names a pole ("where to go tonight?") asks for an answer,
            # not for a new preference: nothing moves
            return Assessment("reply", text, NEUTRAL_DISSATISFACTION, zero, {}, is_reaction=False)
        directions = {**zero, **reading.directions}
        sources = {d: "lexicon" for d, r in reading.directions.items() if r}
        if not any(directions.values()) and self.signals is not None:
            pull = _pull_word(text)
            placed = self.signals.placements(text) if pull else {}
            if placed:
                name, where = max(placed.items(), key=lambda kv: abs(kv[1]))
                if abs(where) >= MODEL_FILL_IN:
                    directions[name] = pull * (1 if where > 0 else -1)
                    sources[name] = "model"
        lexicon_s = reading.dissatisfaction
        model_s = self.signals.dissatisfaction(text) if self.signals is not None else None
        s = lexicon_s if model_s is None else 0.5 * lexicon_s + 0.5 * model_s
        if not any(directions.values()) and answer and s >= 0.5:
            found, found_sources = self._away_from_answer(answer, knobs, THUMBS_DOWN_MARGIN)
            directions.update(found)
            sources.update(found_sources)
        is_reaction = reading.judges or any(directions.values())
        return Assessment(
            kind="reply",
            text=text,
            dissatisfaction=s,
            directions=directions,
            sources=sources,
            lexicon_dissatisfaction=lexicon_s,
            model_dissatisfaction=model_s,
            is_reaction=is_reaction,
        )

    # ---- applying -----------------------------------------------------------------------
    def react(
        self,
        kind: str,
        text: str = "",
        answer: str = "",
        session_id: int | None = None,
        message_id: int | None = None,
    ) -> LearnUpdate:
        """Assess a reaction, save it as feedback and move the profile (mode 'learn')."""
        return self.commit(self.propose(kind, text, answer), session_id, message_id)

    def propose(self, kind: str, text: str = "", answer: str = "") -> LearnUpdate:
        """What a reaction would change, saving nothing: the app shows it before `commit`."""
        before = self.knobs()
        assessment = self.assess(kind, text, answer, before)
        after = apply_update(before, assessment.dissatisfaction, assessment.directions, self.step)
        return LearnUpdate(assessment, before, after)

    def commit(
        self, update: LearnUpdate, session_id: int | None = None, message_id: int | None = None
    ) -> LearnUpdate:
        """Save a proposed update: the feedback row, and the moved values (mode 'learn')."""
        assessment, before, after = update.assessment, update.before, update.after
        kind, text = assessment.kind, assessment.text
        deltas = {d: round(after[d] - before[d], 3) for d in after if after[d] != before[d]}
        event = self.store.add_feedback(
            kind=kind,
            text=text,
            dissatisfaction=assessment.dissatisfaction,
            directions={d: r for d, r in assessment.directions.items() if r},
            deltas=deltas,
            session_id=session_id,
            message_id=message_id,
        )
        feedback_id = getattr(event, "id", None)
        label = text if text else kind.replace("_", " ")
        for name, value in after.items():
            if name in deltas:
                reason = tag_reason(f"feedback {feedback_id}", f"{kind}: {label}"[:200])
                self.store.set_preference(name, value, "learn", reason)
        return LearnUpdate(assessment, before, after, feedback_id)

    def reply(self, text: str, answer: str = "", **ids: Any) -> LearnUpdate:
        """A free-text reply to an answer ("too pricey", "more for kids please")."""
        return self.react("reply", text, answer, **ids)

    def maybe_reply(self, text: str, answer: str = "", **ids: Any) -> LearnUpdate | None:
        """`reply` for any chat message: applied only when it reads as a reaction (it asks for
        a pole, or praises or complains); a plain new request returns None and records nothing."""
        if not self.assess("reply", text, answer).is_reaction:
            return None
        return self.react("reply", text, answer, **ids)

    def thumbs_up(self, answer: str = "", **ids: Any) -> LearnUpdate:
        return self.react("thumbs_up", "", answer, **ids)

    def thumbs_down(self, answer: str, **ids: Any) -> LearnUpdate:
        return self.react("thumbs_down", "", answer, **ids)

    def regenerate(self, answer: str, **ids: Any) -> LearnUpdate:
        return self.react("regenerate", "", answer, **ids)

    def undo(self) -> list[Any]:
        """Undo the last update (every dimension one reaction moved, or one other change)."""
        return undo_last_update(self.store)

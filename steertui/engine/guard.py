"""The coherence guard: while a batch decodes, ease the push of a row whose answer breaks.

Per steered row (a `RowPlan` with `guard=True` and a non-zero push), after every token, it
watches cheap signals: the share of the last `window` token n-grams already seen in the answer
(loops are the commonest failure, and perplexity cannot see them), a run of near-certain picks
(the distribution's entropy collapsing), and letters leaving the script of the prompt. When the
row is in distress it multiplies that row's coefficients by `ease_factor`
(`CompiledPlan.set_row_scale`: the user's values stay, a knob moved mid-stream still lands) and
restores them step by step once the row has been calm for `steady` tokens. Easing alone does
not end a loop that has begun: the guard then blocks, for that row only, the token that
continued the repeating n-gram the last times (bench/guard_check.py measures both). Unsteered
rows and rows with the guard off are never touched. What it did is kept per row as a
`GuardRecord` (the last `TokenEvent` of a row and `GenerationResult.guard` carry it).
"""

from __future__ import annotations

import unicodedata
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import torch

if TYPE_CHECKING:
    from steertui.engine.plan import CompiledPlan, RowPlan

EventKind = Literal["eased", "restored", "blocked"]
BANNED_LOGIT = -1e9  # a token the guard blocks for one pick (finite: the sampler refuses others)


@dataclass(frozen=True)
class GuardOptions:
    """The guard's thresholds (the defaults are the ones bench/guard_check.py measured)."""

    ngram: int = 3  # token n-grams counted for repetition
    window: int = 32  # the recent tokens whose n-grams are watched
    ease_at: float = 0.4  # share of the window's n-grams seen before that eases the push
    ease_factor: float = 0.6  # the row's scale is multiplied by this per easing
    cooldown: int = 6  # tokens between two easings
    floor: float = 0.0  # the lowest scale
    steady: int = 24  # calm tokens before a restoring step
    restore: float = 0.2  # scale given back per restoring step
    block: bool = True  # block a loop's next token
    block_context: int = 3  # a loop: the same token follows these tokens ...
    block_repeats: int = 2  # ... this many times already (within `loop_window` tokens)
    loop_window: int = 192
    entropy_floor: float = 0.15  # nats: mean over `window` picks below this is a collapse
    script_share: float = 0.5  # share of recent letters outside the prompt's script


@dataclass(frozen=True)
class GuardEvent:
    """One thing the guard did to a row. `token` is 1-based in the answer; an easing that
    went on over several tokens ends at `until`; `coeffs` are the user's values then."""

    token: int
    kind: EventKind
    scale_from: float = 1.0
    scale_to: float = 1.0
    until: int = 0
    reason: str = ""
    ngram: int = 0
    count: int = 1
    coeffs: tuple[tuple[str, float], ...] = ()

    def describe(self, c_max: Mapping[str, float] | None = None) -> str:
        if self.kind == "blocked":
            times = f" {self.count} times" if self.count > 1 else ""
            return f"blocked a repeating {self.ngram}-gram{times} at token {self.token}"
        where = f"at token {self.token}"
        if self.until > self.token:
            where = f"at tokens {self.token}-{self.until}"
        if self.kind == "restored":
            return f"restored {_names(self.coeffs)} {where}"
        pushes = ", ".join(
            f"{name} {_value(name, c * self.scale_from, c_max)} to {_value(name, c * self.scale_to, c_max)}"
            for name, c in self.coeffs
        )
        why = f" ({self.reason})" if self.reason else ""
        return f"eased {pushes or 'the push'} {where}{why}"


def _names(coeffs: Sequence[tuple[str, float]]) -> str:
    return ", ".join(name for name, _ in coeffs) or "the push"


def _value(name: str, coeff: float, c_max: Mapping[str, float] | None) -> str:
    """A coefficient as the knob shows it (given the dimension's c_max), else as it is."""
    if c_max and c_max.get(name):
        return f"{100.0 * coeff / c_max[name]:+.0f}"
    return f"{coeff:+.3g}"


@dataclass(frozen=True)
class GuardRecord:
    """What the guard did to one row, for the answer's footer and `generate --json`."""

    events: tuple[GuardEvent, ...] = ()
    scale: float = 1.0  # the row's scale at the end
    min_scale: float = 1.0

    @property
    def acted(self) -> bool:
        return bool(self.events)

    def describe(self, c_max: Mapping[str, float] | None = None) -> str:
        """One line: `guard eased cost +100 to +55 at token 71; ...` (`c_max` per dimension
        shows knob values, else coefficients)."""
        if not self.events:
            return "guard: nothing to ease"
        return "guard " + "; ".join(e.describe(c_max) for e in self.events)

    def to_dict(self, c_max: Mapping[str, float] | None = None) -> dict[str, Any]:
        return {
            "summary": self.describe(c_max),
            "scale": round(self.scale, 4),
            "min_scale": round(self.min_scale, 4),
            "events": [
                {**asdict(e), "coeffs": dict(e.coeffs), "text": e.describe(c_max)}
                for e in self.events
            ],
        }


_OTHER = "OTHER"


def letter_scripts(text: str) -> list[str]:
    """The script of each letter of `text` (LATIN, CYRILLIC, CJK, ...); an undecodable piece
    (a token that is part of a character) counts as OTHER."""
    out = []
    for ch in text:
        if ch == "\ufffd":
            out.append(_OTHER)
        elif ch.isalpha():
            out.append(unicodedata.name(ch, _OTHER).split(" ")[0])
    return out


def dominant_script(text: str) -> str | None:
    scripts = Counter(s for s in letter_scripts(text) if s != _OTHER)
    return scripts.most_common(1)[0][0] if scripts else None


@dataclass
class GuardState:
    """What the guard knows of one row: kept by whoever owns the row (a decode's guard, or a
    continuous batch's request, which moves between batch positions)."""

    script: str | None
    tokens: list[int] = field(default_factory=list)
    seen: Counter[tuple[int, ...]] = field(default_factory=Counter)
    repeated: deque[bool] = field(default_factory=deque)
    entropies: deque[float] = field(default_factory=deque)
    letters: deque[tuple[int, int]] = field(default_factory=deque)  # (letters, foreign) a token
    # context n-gram -> the positions and tokens that followed it
    follows: dict[tuple[int, ...], list[tuple[int, int]]] = field(default_factory=dict)
    scale: float = 1.0
    min_scale: float = 1.0
    last_change: int | None = None  # the token of the last easing or restoring step
    calm: int = 0
    events: list[GuardEvent] = field(default_factory=list)
    # the plan whose pushes the guard watches and reports (None: the compiled plan's row)
    plan: RowPlan | None = None

    @classmethod
    def for_prompt(cls, prompt_text: str, plan: RowPlan | None = None) -> GuardState:
        return cls(dominant_script(prompt_text), plan=plan)

    def record(self) -> GuardRecord:
        return GuardRecord(tuple(self.events), self.scale, self.min_scale)


class CoherenceGuard:
    """The guard of one batch decode (made by the engine when some row is guarded), or of one
    step of a continuous batch (`over`: the rows' own states at their current positions)."""

    def __init__(
        self,
        plan: CompiledPlan,
        prompt_texts: Sequence[str],
        token_text: Callable[[int], str],
        options: GuardOptions | None = None,
        *,
        states: Mapping[int, GuardState] | None = None,
    ) -> None:
        self.plan = plan
        self.options = options or GuardOptions()
        self.token_text = token_text
        self.rows: dict[int, GuardState] = (
            dict(states)
            if states is not None
            else {
                b: GuardState.for_prompt(prompt_texts[b])
                for b in range(plan.batch_size)
                if plan.guarded[b]
            }
        )

    @classmethod
    def over(
        cls,
        plan: CompiledPlan,
        states: Mapping[int, GuardState],
        token_text: Callable[[int], str],
        options: GuardOptions | None = None,
    ) -> CoherenceGuard:
        """A guard over existing row states, keyed by their row in `plan`."""
        return cls(plan, (), token_text, options, states=states)

    @property
    def wants_entropy(self) -> bool:
        return bool(self.rows)

    def guard_logits(self, logits: torch.Tensor) -> tuple[torch.Tensor, list[float]]:
        """The step's `[B, V]` float logits with this step's blocked tokens banned, and each
        row's entropy (for `observe`): what every decode runs before it picks."""
        spread = entropies(logits)
        bans = self.bans()
        if bans:
            logits = logits.clone()
            for b, tok in bans:
                logits[b, tok] = BANNED_LOGIT
        return logits, spread

    def _watched(self, b: int) -> RowPlan:
        row = self.rows.get(b)
        return row.plan if row is not None and row.plan is not None else self.plan.rows[b]

    def _pushing(self, b: int) -> bool:
        return any(v.coeff != 0 for v in self._watched(b).vectors)

    def _coeffs(self, b: int) -> tuple[tuple[str, float], ...]:
        out: dict[str, float] = {}
        for v in self._watched(b).vectors:
            out.setdefault(v.name or v.source or "push", float(v.coeff))
        return tuple(out.items())

    def bans(self) -> list[tuple[int, int]]:
        """(row, token) pairs the next pick must not take: the token that continued a
        repeating n-gram `block_repeats` times already, in a row whose answer is looping."""
        opt = self.options
        if not opt.block:
            return []
        out: list[tuple[int, int]] = []
        for b, row in self.rows.items():
            n = opt.block_context
            if len(row.tokens) < n or not self._pushing(b):
                continue
            if len(row.repeated) < opt.window // 2 or _share(row.repeated) < opt.ease_at / 2:
                continue
            recent = len(row.tokens) - opt.loop_window
            nexts = Counter(
                tok for pos, tok in row.follows.get(tuple(row.tokens[-n:]), []) if pos >= recent
            )
            banned = [tok for tok, count in nexts.items() if count >= opt.block_repeats]
            if banned:
                out.extend((b, tok) for tok in banned)
                self._note_block(row, len(row.tokens) + 1)
        return out

    def _note_block(self, row: GuardState, token: int) -> None:
        last = row.events[-1] if row.events else None
        ngram = self.options.block_context + 1
        if last is not None and last.kind == "blocked" and token - last.until <= 16:
            row.events[-1] = GuardEvent(
                last.token, "blocked", until=token, ngram=ngram, count=last.count + 1
            )
        else:
            row.events.append(GuardEvent(token, "blocked", until=token, ngram=ngram))

    def observe(self, picked: Mapping[int, int], entropies: Sequence[float] | None) -> None:
        """Take each guarded row's new token (rows that finished are not in `picked`)."""
        opt = self.options
        for b, tok in picked.items():
            row = self.rows.get(b)
            if row is None:
                continue
            n = opt.block_context
            if len(row.tokens) >= n:
                row.follows.setdefault(tuple(row.tokens[-n:]), []).append((len(row.tokens), tok))
            row.tokens.append(tok)
            if len(row.tokens) >= opt.ngram:
                gram = tuple(row.tokens[-opt.ngram :])
                _push(row.repeated, row.seen[gram] > 0, opt.window)
                row.seen[gram] += 1
            if entropies is not None:
                _push(row.entropies, float(entropies[b]), opt.window)
            scripts = letter_scripts(self.token_text(tok))
            foreign = sum(1 for s in scripts if row.script is not None and s != row.script)
            _push(row.letters, (len(scripts), foreign), opt.window)
            self._decide(b, row)

    def _distress(self, row: GuardState) -> str:
        opt = self.options
        if len(row.repeated) < opt.window // 2:
            return ""
        share = _share(row.repeated)
        if share >= opt.ease_at:
            return "repeats"
        letters = sum(n for n, _ in row.letters)
        if letters >= 8 and sum(f for _, f in row.letters) >= opt.script_share * letters:
            return "script"
        if (
            len(row.entropies) >= opt.window // 2
            and sum(row.entropies) / len(row.entropies) < opt.entropy_floor
            and share >= opt.ease_at / 2
        ):
            return "collapse"
        return ""

    def _decide(self, b: int, row: GuardState) -> None:
        opt = self.options
        token = len(row.tokens)
        reason = self._distress(row) if self._pushing(b) else ""
        if reason:
            row.calm = 0
            waited = row.last_change is None or token - row.last_change >= opt.cooldown
            if row.scale > opt.floor and waited:
                self._set(b, row, max(opt.floor, row.scale * opt.ease_factor), reason)
            return
        row.calm += 1
        if row.scale < 1.0 and row.calm >= opt.steady:
            row.calm = 0
            self._set(b, row, min(1.0, row.scale + opt.restore), "")

    def _set(self, b: int, row: GuardState, scale: float, reason: str) -> None:
        token = len(row.tokens)
        before = row.scale
        row.scale, row.last_change = scale, token
        row.min_scale = min(row.min_scale, scale)
        self.plan.set_row_scale(b, scale)
        coeffs = self._coeffs(b)
        eases = [e for e in row.events if e.kind != "blocked"]
        last = eases[-1] if eases else None
        if reason:
            if last is not None and last.kind == "eased" and last.scale_to == before:
                i = row.events.index(last)
                row.events[i] = GuardEvent(
                    token=last.token,
                    kind="eased",
                    scale_from=last.scale_from,
                    scale_to=scale,
                    until=token,
                    reason=last.reason,
                    ngram=0,
                    count=1,
                    coeffs=coeffs,
                )
            else:
                row.events.append(
                    GuardEvent(
                        token=token,
                        kind="eased",
                        scale_from=before,
                        scale_to=scale,
                        until=token,
                        reason=reason,
                        coeffs=coeffs,
                    )
                )
        elif scale >= 1.0:
            row.events.append(GuardEvent(token, "restored", before, scale, token, coeffs=coeffs))

    def record(self, b: int) -> GuardRecord | None:
        row = self.rows.get(b)
        return None if row is None else row.record()


def _push(queue: deque[Any], value: Any, size: int) -> None:
    queue.append(value)
    while len(queue) > size:
        queue.popleft()


def _share(flags: deque[bool]) -> float:
    return sum(flags) / len(flags) if flags else 0.0


def entropies(logits: torch.Tensor) -> list[float]:
    """Each row's next-token entropy (nats) from float32 logits `[B, V]`."""
    logp = torch.log_softmax(logits, dim=-1)
    return (-(logp.exp() * logp).nan_to_num().sum(-1)).tolist()

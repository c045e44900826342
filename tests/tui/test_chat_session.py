"""The chat's session, headless (no Textual, a real SQLite store): every write, the steering
record stored with an answer, and the footer a reopened answer shows."""

from __future__ import annotations

import pytest

from steertui.errors import StoreError
from steertui.store import Store
from steertui.tui.chat_session import ChatSession, Finished, answer_footer
from steertui.tui.steering import SteeringState
from tests.tui.fake_engine import FAKE_DIMENSIONS, FakeEngine, FakeProvider, FakeVector


def _answer(session: ChatSession, state: SteeringState, text: str = "Noodles.") -> dict:
    session.add_user("Where to eat?", "fake/steer-mini", state.knob_values)
    engine = FakeEngine()
    live = state.begin_answer(lambda plan: engine.compile([plan], 1))
    state.end_answer()
    finished = Finished(text, [101, 102], "eos", 4.0)
    return session.add_answer(
        finished,
        live,
        session.conversation.messages(),
        final_knobs=state.applied_knobs(live),
        sampling={"temperature": 0.0},
    )


def _steering(loaded: tuple[str, ...]) -> SteeringState:
    state = SteeringState()
    state.reset(FakeProvider(), FAKE_DIMENSIONS)
    state.set_active(["cost", "age"], {"cost": 100.0, "age": 30.0})
    for name in loaded:
        state.vector_ready(name, FakeVector(0, 8))
    return state


def test_an_answer_is_stored_with_only_what_steered_it(store: Store) -> None:
    session = ChatSession(store)
    record = _answer(session, _steering(("age",)))
    assert session.session_id is not None
    rows = store.messages(session.session_id)
    assert [r.role for r in rows] == ["user", "assistant"]
    stored = rows[1].steering or {}
    assert stored == record
    assert stored["knobs"] == {"age": 30.0}  # cost's vector was loading: not applied
    assert {v["name"] for v in stored["plan"]["vectors"]} == {"age"}
    assert stored["not_applied"] == {"cost": {"knob": 100.0, "reason": "vector loading"}}
    footer = answer_footer(2, 4.0, False, stored)
    assert footer == "2 tokens · 4.0 tok/s · age +30 · cost +100 not applied: vector loading"
    assert session.last is not None and session.last.message_id == rows[1].id


def test_a_reopened_session_shows_the_same_footers_and_its_knobs(store: Store) -> None:
    first = ChatSession(store)
    _answer(first, _steering(("cost", "age")))
    assert first.session_id is not None
    first.save_knobs({"cost": -10.0})
    again = ChatSession(store)
    opened = again.open(first.session_id, encode=lambda text: [len(w) for w in text.split()])
    assert opened.knobs == {"cost": -10.0}
    assert [m.role for m in opened.messages] == ["user", "assistant"]
    assert opened.messages[1].footer == "2 tokens · 4.0 tok/s · cost +100, age +30"
    assert again.last is not None and again.last.token_ids == [8]  # "Noodles." re-read
    assert again.conversation.ends_with_answer


def test_dropping_the_last_answer_truncates_the_store(store: Store) -> None:
    session = ChatSession(store)
    _answer(session, _steering(()))
    session.drop_last(1)
    assert session.session_id is not None
    assert [r.role for r in store.messages(session.session_id)] == ["user"]
    assert session.last is None


def test_opening_a_missing_session_changes_nothing(store: Store) -> None:
    session = ChatSession(store)
    _answer(session, _steering(()))
    before = session.session_id
    with pytest.raises(StoreError, match="no session 99"):
        session.open(99)
    assert session.session_id == before and session.last is not None

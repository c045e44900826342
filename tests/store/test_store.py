"""The session store's API: what the app, the search and the preference modes rely on."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from steertui.errors import StoreError
from steertui.store import SCHEMA_VERSION, Store

SNAPSHOT = {
    "model": "toy",
    "positions": "generated",
    "knobs": {"cost": 40, "age": -25},
    "vectors": [
        {
            "name": "cost",
            "source": "vectors/toy-cost.safetensors",
            "layer": 2,
            "coeff": 0.32,
            "scale": 3.7,
            "raw": False,
            "schedule": {"type": "decay", "rate": 0.9},
        }
    ],
}
SAMPLING = {"temperature": 0.7, "top_p": 0.95, "top_k": 0, "max_new_tokens": 64, "seed": 11}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "home" / "sessions" / "steertui.db") as s:
        yield s


def test_open_creates_a_private_wal_database_at_the_current_version(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "steertui.db"
    with Store.open(str(path)) as store:
        assert store.path == path
        assert store.schema_version == SCHEMA_VERSION
        store.create_session("t", "toy")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_many_openers_of_a_new_database_at_once(tmp_path: Path) -> None:
    """The app, a search and the CLI starting together all get the same, migrated database."""
    path = tmp_path / "sessions" / "steertui.db"
    stores: list[Store] = []
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def opener() -> None:
        try:
            start.wait()
            store = Store.open(path)
            store.create_session("hello", "toy")
            stores.append(store)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(stores[0].list_sessions()) == 6
    assert {s.schema_version for s in stores} == {SCHEMA_VERSION}
    for store in stores:
        store.close()


def test_a_loose_file_mode_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "steertui.db"
    Store.open(path).close()
    os.chmod(path, 0o644)
    Store.open(path).close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_sessions_round_trip_and_persist(tmp_path: Path) -> None:
    path = tmp_path / "steertui.db"
    with Store.open(path) as store:
        session = store.create_session("Dinner plans", "toy", knobs={"cost": 20})
        store.add_message(session.id, "user", "Where should we eat tonight?")
        answer = store.add_message(
            session.id,
            "assistant",
            "The ramen bar downtown.",
            steering=SNAPSHOT,
            sampling=SAMPLING,
            token_count=6,
            tokens_per_second=41.5,
            stopped=True,
        )
    with Store.open(path) as store:
        (again,) = store.list_sessions()
        assert (again.id, again.title, again.model, again.knobs) == (
            session.id,
            "Dinner plans",
            "toy",
            {"cost": 20},
        )
        user, assistant = store.messages(session.id)
        assert (user.role, user.content, user.steering, user.sampling) == (
            "user",
            "Where should we eat tonight?",
            None,
            None,
        )
        assert assistant == answer
        assert assistant.steering == SNAPSHOT and assistant.sampling == SAMPLING
        assert (assistant.token_count, assistant.tokens_per_second, assistant.stopped) == (
            6,
            41.5,
            True,
        )


def test_list_sessions_newest_activity_first_and_search_ignores_case(store: Store) -> None:
    a = store.create_session("Trip to Kyoto", "toy")
    b = store.create_session("Budget dinner", "toy")
    c = store.create_session("kyoto food", "toy")
    assert [s.id for s in store.list_sessions()] == [c.id, b.id, a.id]
    store.add_message(a.id, "user", "hello")  # activity moves a to the top
    assert [s.id for s in store.list_sessions()] == [a.id, c.id, b.id]
    assert [s.id for s in store.list_sessions(search="KYOTO")] == [a.id, c.id]
    assert store.list_sessions(search="paris") == []


def test_unknown_ids_are_one_line_errors(store: Store) -> None:
    with pytest.raises(StoreError, match=r"^no session 42$"):
        store.get_session(42)
    for call in (
        lambda: store.messages(42),
        lambda: store.rename_session(42, "x"),
        lambda: store.delete_session(42),
        lambda: store.add_message(42, "user", "hi"),
        lambda: store.update_session_knobs(42, {}),
    ):
        with pytest.raises(StoreError, match="no session 42"):
            call()
    with pytest.raises(StoreError, match="no run 7"):
        store.get_run(7)
    with pytest.raises(StoreError, match="no message 5"):
        store.get_message(5)


def test_bad_values_are_refused_before_writing(store: Store) -> None:
    session = store.create_session("s", "toy")
    with pytest.raises(StoreError, match="role 'robot'"):
        store.add_message(session.id, "robot", "beep")
    with pytest.raises(StoreError, match="steering snapshot cannot be stored as JSON"):
        store.add_message(session.id, "assistant", "x", steering={"f": object()})
    with pytest.raises(StoreError, match="title cannot be empty"):
        store.rename_session(session.id, "  ")
    assert store.messages(session.id) == []


def test_rename_update_knobs_and_delete(store: Store) -> None:
    session = store.create_session("old", "toy")
    keep = store.create_session("keep", "toy")
    store.add_message(session.id, "user", "one")
    store.add_message(keep.id, "user", "two")
    assert store.rename_session(session.id, "new").title == "new"
    assert store.update_session_knobs(session.id, {"time": -60}).knobs == {"time": -60}
    assert store.get_session(session.id).title == "new"
    store.delete_session(session.id)
    assert [s.id for s in store.list_sessions()] == [keep.id]
    assert store.message_counts() == {keep.id: 1}


def test_update_and_truncate_messages(store: Store) -> None:
    session = store.create_session("s", "toy")
    ids = [store.add_message(session.id, "user", f"m{i}").id for i in range(4)]
    streamed = store.update_message(ids[1], content="full answer", token_count=3, stopped=True)
    assert (streamed.content, streamed.token_count, streamed.stopped) == ("full answer", 3, True)
    assert store.truncate_session(session.id, ids[2]) == 2
    assert [m.content for m in store.messages(session.id)] == ["m0", "full answer"]
    other = store.create_session("o", "toy")
    with pytest.raises(StoreError, match="not in session"):
        store.truncate_session(other.id, ids[0])


def test_preferences_history_and_undo(store: Store) -> None:
    assert store.undo_last_preference() is None
    store.set_preference("cost", 30, "select")
    store.set_preference("age", -10, "calibrate", reason="calibration answer 2")
    store.set_preference("cost", 55.5, "learn", reason="too cheap")
    profile = store.profile()
    assert {k: (v.value, v.mode) for k, v in profile.items()} == {
        "age": (-10.0, "calibrate"),
        "cost": (55.5, "learn"),
    }
    assert [(h.dimension, h.value) for h in store.preference_history()] == [
        ("cost", 55.5),
        ("age", -10.0),
        ("cost", 30.0),
    ]
    restored = store.undo_last_preference()
    assert restored is not None
    assert (restored.dimension, restored.value, restored.mode) == ("cost", 30.0, "select")
    assert store.profile()["cost"].mode == "select"
    assert store.preference_history("cost")[0].mode == "undo"
    undone_age = store.undo_last_preference()
    assert undone_age is not None and (undone_age.dimension, undone_age.value) == ("age", None)
    assert set(store.profile()) == {"cost"}
    store.undo_last_preference()
    assert store.profile() == {}
    assert store.undo_last_preference() is None
    assert len(store.preference_history()) == 6
    with pytest.raises(StoreError, match="mode 'guess'"):
        store.set_preference("cost", 1, "guess")
    with pytest.raises(StoreError, match="finite"):
        store.set_preference("cost", float("nan"), "select")


def test_clear_preference_is_undoable(store: Store) -> None:
    store.set_preference("time", 70, "import")
    store.clear_preference("time")
    assert store.profile() == {}
    entry = store.undo_last_preference()
    assert entry is not None and (entry.value, entry.mode) == (70.0, "import")
    assert store.profile()["time"].value == 70.0


def test_feedback_newest_first_and_kept_after_its_session_is_deleted(store: Store) -> None:
    session = store.create_session("s", "toy")
    message = store.add_message(session.id, "assistant", "a pricey place")
    first = store.add_feedback(
        "text", "too expensive", 0.8, {"cost": -1.0}, {"cost": -12.0}, session.id, message.id
    )
    store.add_feedback("text", "more kid friendly", 0.5, {"age": -1.0}, {"age": -6.0})
    assert [f.text for f in store.feedback()] == ["more kid friendly", "too expensive"]
    assert [f.text for f in store.feedback(limit=1)] == ["more kid friendly"]
    assert first.directions == {"cost": -1.0} and first.deltas == {"cost": -12.0}
    store.delete_session(session.id)
    kept = store.feedback()[-1]
    assert (kept.text, kept.session_id, kept.message_id) == ("too expensive", None, None)


def test_runs_and_trials(store: Store) -> None:
    run = store.create_run({"dimensions": ["cost"], "budget": 10}, seed=3, log_path="run.log")
    assert (run.status, run.seed, run.kind, run.finished) == ("running", 3, "autosteer", None)
    store.add_trial(run.id, 2, {"cost": 0.3}, 0.7, "keep", duration=1.5)
    store.add_trial(run.id, 0, {}, 0.4, "baseline")
    store.add_trial(run.id, 1, {"cost": 0.9}, None, "crash", error="NaN logits")
    # A resumed run replaying iteration 2 never records it twice.
    replay = store.add_trial(run.id, 2, {"cost": 0.5}, 0.1, "discard")
    assert (replay.score, replay.status, replay.candidate) == (0.7, "keep", {"cost": 0.3})
    trials = store.trials(run.id)
    assert [(t.iteration, t.status) for t in trials] == [(0, "baseline"), (1, "crash"), (2, "keep")]
    assert trials[1].error == "NaN logits" and trials[1].score is None
    done = store.update_run(
        run.id,
        status="finished",
        finished=True,
        best_score=0.7,
        best_candidate={"cost": 0.3},
        baseline_score=0.4,
    )
    assert (done.status, done.best_candidate, done.baseline_score) == (
        "finished",
        {"cost": 0.3},
        0.4,
    )
    assert done.finished is not None and done.finished >= done.started
    second = store.create_run({}, seed=None, kind="calibrate")
    assert [r.id for r in store.list_runs()] == [second.id, run.id]
    with pytest.raises(StoreError, match="no field 'score'"):
        store.update_run(run.id, score=1)
    with pytest.raises(StoreError, match="status 'ok'"):
        store.add_trial(run.id, 3, {}, 0.1, "ok")
    store.delete_run(run.id)
    assert [r.id for r in store.list_runs()] == [second.id]


def test_failed_measurements_are_stored_as_missing_not_refused(store: Store) -> None:
    """A NaN perplexity must not crash a search run or an export (JSON has no NaN)."""
    run = store.create_run({"threshold": float("inf")}, seed=1)
    trial = store.add_trial(
        run.id, 0, {"cost": 0.4, "details": {"ppl": float("nan")}}, float("nan"), "crash"
    )
    assert trial.score is None and trial.candidate == {"cost": 0.4, "details": {"ppl": None}}
    assert store.get_run(run.id).config == {"threshold": None}
    assert store.update_run(run.id, best_score=float("-inf")).best_score is None
    session = store.create_session("s", "toy")
    message = store.add_message(session.id, "assistant", "x", tokens_per_second=float("inf"))
    assert message.tokens_per_second is None


def test_vectors_upsert_by_path(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "vectors" / "toy-cost.safetensors"
    first = store.add_vector(path, "toy", "cost", "mean_diff", "aaa")
    again = store.add_vector(str(path), "toy", "cost", "pca", "bbb")
    store.add_vector(tmp_path / "age.safetensors", "toy", "age", "mean_diff", "ccc")
    assert again.id == first.id and (again.method, again.dataset_hash) == ("pca", "bbb")
    assert len(store.vectors()) == 2
    assert [v.dimension for v in store.vectors(model="toy", dimension="cost")] == ["cost"]
    assert store.remove_vector(path) and not store.remove_vector(path)


def test_a_closed_store_says_so(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.db")
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.list_sessions()


def test_chat_and_search_threads_write_thousands_of_rows_at_once(tmp_path: Path) -> None:
    """Chat, search and a UI reader share one Store; a CLI process-like second Store joins in."""
    path = tmp_path / "steertui.db"
    store = Store.open(path)
    other = Store.open(path)  # e.g. `steertui search` running in another process
    session = store.create_session("chat", "toy")
    run = store.create_run({"budget": 1500}, seed=0)
    n = 1500
    errors: list[BaseException] = []
    done = threading.Event()
    start = threading.Barrier(4)

    def guarded(fn: Callable[[], None]) -> Callable[[], None]:
        def body() -> None:
            try:
                start.wait()
                fn()
            except BaseException as exc:
                errors.append(exc)

        return body

    def chat() -> None:
        for i in range(n):
            role = "user" if i % 2 == 0 else "assistant"
            store.add_message(session.id, role, f"chat {i}", steering=SNAPSHOT, sampling=SAMPLING)

    def search() -> None:
        for i in range(n):
            store.add_trial(run.id, i, {"cost": i / n}, i / n, "keep" if i % 3 else "discard")
            if i % 100 == 0:
                store.update_run(run.id, best_score=i / n)

    def learn() -> None:
        for i in range(300):
            other.add_feedback("text", f"feedback {i}", 0.5, {"cost": 1.0}, {"cost": 2.0})
            other.set_preference("cost", i % 100, "learn")

    def ui() -> None:
        while not done.is_set():
            store.list_sessions()
            store.messages(session.id)
            store.trials(run.id)

    threads = [threading.Thread(target=guarded(f)) for f in (chat, search, learn)]
    reader = threading.Thread(target=guarded(ui))
    for t in [*threads, reader]:
        t.start()
    for t in threads:
        t.join()
    done.set()
    reader.join()
    assert errors == []
    assert [m.content for m in store.messages(session.id)] == [f"chat {i}" for i in range(n)]
    assert [t.iteration for t in store.trials(run.id)] == list(range(n))
    assert sorted(f.text for f in store.feedback()) == sorted(f"feedback {i}" for i in range(300))
    assert len(store.preference_history("cost")) == 300
    store.close()
    other.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()

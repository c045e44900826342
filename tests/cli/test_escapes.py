"""Stored and model text printed by the CLI is text: no escape sequence reaches the terminal,
no rich markup is interpreted, and the database keeps the raw text."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from steertui.cli import app
from steertui.home import Home
from steertui.store import Store

runner = CliRunner()

OSC_TITLE = "\x1b]0;pwned\x07"
OSC_CLIPBOARD = "\x1b]52;c;cm0gLXJmIH4=\x1b\\"
CLEAR = "\x1b[2J"
EVIL = f"Go to {OSC_TITLE}the {OSC_CLIPBOARD}noodle {CLEAR}bar \x9b2J now."
TITLE = f"Dinner [/bold] {OSC_TITLE}[link=http://evil.example]click[/link] \x9d"
MODEL = "evil/[link=http://evil.example]m[/link][/bold]"
TERMINAL_ACTS_ON = ("\x1b", "\x07", "\x9b", "\x9d", "\x9c")


@pytest.fixture
def home(tmp_path: Path) -> str:
    root = Home.resolve(tmp_path / "home").ensure()
    with Store.open(root.db_path) as store:
        s = store.create_session("dinner", MODEL, knobs={"cost": 40})
        # steertui refuses such a title at entry (issue 28); an older one or another tool
        # may have stored it, and it must still print harmlessly
        store._write(lambda c: c.execute("UPDATE sessions SET title = ?", (TITLE,)))
        store.add_message(s.id, "user", f"where? {CLEAR}")
        store.add_message(s.id, "assistant", EVIL, steering={"knobs": {"cost": 40}})
    return str(root.root)


def ok(*args: str) -> str:
    result = runner.invoke(app, list(args), env={"COLUMNS": "400"})
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def harmless(out: str) -> None:
    for char in TERMINAL_ACTS_ON:
        assert char not in out, f"{char!r} printed: {out!r}"


def test_sessions_show_prints_escape_sequences_as_text(home: str) -> None:
    out = ok("sessions", "show", "1", "--home", home)
    harmless(out)
    assert "noodle" in out and "bar" in out and "now." in out
    with Store.open(Home.resolve(home).db_path) as store:
        assert store.messages(1)[-1].content == EVIL  # stored raw


def test_sessions_list_prints_titles_and_models_as_text(home: str) -> None:
    out = ok("sessions", "list", "--home", home)
    harmless(out)
    flat = "".join(out.split())  # the table may wrap a long cell
    assert "[/bold]" in flat and "[link=http://evil.example]click[/link]" in flat
    assert "evil/[link=http://evil.example]m[/link][/bold]" in flat


def test_sessions_list_json_is_exact_and_terminal_safe(home: str) -> None:
    out = ok("sessions", "list", "--json", "--home", home)
    harmless(out)
    rows = json.loads(out)
    assert rows[0]["title"] == TITLE and rows[0]["model"] == MODEL


def test_exports_md_for_reading_json_exact(home: str, tmp_path: Path) -> None:
    md = ok("sessions", "export", "1", "--format", "md", "--home", home)
    harmless(md)
    assert "noodle" in md and "[/bold]" in md
    raw = ok("sessions", "export", "1", "--format", "json", "--home", home)
    harmless(raw)
    doc = json.loads(raw)
    assert doc["messages"][-1]["content"] == EVIL and doc["session"]["title"] == TITLE


def test_markup_in_a_built_vectors_model_id_is_printed_literally(tmp_path: Path) -> None:
    from steertui.vectors.built import built_dir
    from tests.vector_files import make_vector

    home = Home.resolve(tmp_path / "home").ensure()
    vec = make_vector()
    vec.meta.model_id = MODEL
    vec.meta.negative = "[/bold]cheap"
    vec.save(built_dir(home, "tiny") / "cost-diffmean-00000000.safetensors")
    out = ok("vectors", "list", "--home", str(home.root))
    harmless(out)
    assert "[/bold]" in "".join(out.split())


def test_profile_show_prints_stored_names_as_text(tmp_path: Path) -> None:
    from steertui.prefs import select

    home = Home.resolve(tmp_path / "home").ensure()
    with Store.open(home.db_path) as store:
        select(store, "cost", 40.0, f"because [/bold] {OSC_TITLE}")
    out = ok("profile", "show", "--home", str(home.root))
    harmless(out)
    assert "[/bold]" in "".join(out.split())


def test_the_tsv_log_is_created_private(tmp_path: Path) -> None:
    from steertui.search.events import TrialRecord
    from steertui.search.space import SteerCandidate
    from steertui.search.tsvlog import TSVLog

    old = os.umask(0o022)
    try:
        log = TSVLog(tmp_path / "runs" / "log.tsv")
        log.append(TrialRecord(0, SteerCandidate(), 0.5, "baseline"), None)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "runs" / "log.tsv").stat().st_mode) == 0o600


class _EvilEngine:
    """Answers EVIL, in pieces that split its escape sequences."""

    model_id = "fake"

    def __init__(self, loaded: object = None, **options: object) -> None:
        from types import SimpleNamespace

        self.loaded = SimpleNamespace(notices=[])

    def take_notices(self) -> list[str]:
        return []

    def stream(self, rows: object, **kwargs: object):
        from types import SimpleNamespace

        for i in range(0, len(EVIL), 3):
            yield SimpleNamespace(text=EVIL[i : i + 3], finish_reason=None, guard=None)

    def generate(self, rows: list[object], **kwargs: object) -> list[object]:
        from types import SimpleNamespace

        return [
            SimpleNamespace(
                text=EVIL, n_tokens=9, finish_reason="eos", tokens_per_second=1.0, guard=None
            )
            for _ in rows
        ]


@pytest.mark.parametrize("extra", [[], ["--n", "2"]])
def test_generate_prints_an_answer_as_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: list[str]
) -> None:
    import steertui.engine

    monkeypatch.setattr(steertui.engine, "Engine", _EvilEngine)
    monkeypatch.setattr(steertui.engine, "load_model", lambda *a, **k: None)
    out = ok("generate", "-p", "hi", *extra, "--home", str(tmp_path / "h"))
    harmless(out)
    assert "noodle" in out and "now." in out
    exact = ok("generate", "-p", "hi", "--json", "--home", str(tmp_path / "h"))
    assert json.loads(exact.splitlines()[0])["text"] == EVIL

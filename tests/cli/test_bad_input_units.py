"""The one atomic write, the one error formatter and the one number check, on their own."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from steertui.errors import ConfigError, PathError, first_line
from steertui.files import atomic_path, output_file, read_text, write_atomic
from steertui.validation import integer, knob, number, parse_integer


def test_write_atomic_replaces_whole_and_leaves_nothing_behind(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "out.md"
    write_atomic(target, "first")
    write_atomic(target, "second\n", mode=0o644)
    assert target.read_text(encoding="utf-8") == "second\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["out.md"]


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path: Path) -> None:
    target = tmp_path / "v.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("crash mid-write")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["v.bin"]


def test_a_place_that_cannot_take_a_file_is_one_path_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(
        PathError, match=r"^cannot write export .*file/a\.md: .*file is a file, not a folder$"
    ):
        write_atomic(blocker / "a.md", "text", "export")
    with pytest.raises(PathError, match="is a file, not a folder"):
        output_file(blocker / "a.md", "--out")
    with pytest.raises(PathError, match="it is a folder, expected a file path"):
        output_file(tmp_path, "--out")
    with pytest.raises(PathError, match="new does not exist"):  # issue 28: never made
        output_file(tmp_path / "new" / "a.md", "--out")
    assert not (tmp_path / "new").exists()  # checking creates nothing
    assert output_file(tmp_path / "a.md", "--out") == tmp_path / "a.md"
    assert not (tmp_path / "a.md").exists()


def test_read_text_names_encoding_and_binary(tmp_path: Path) -> None:
    (tmp_path / "l.toml").write_bytes("café".encode("latin-1"))
    (tmp_path / "b.toml").write_bytes(b"a\x00b")
    with pytest.raises(ConfigError, match=r"l\.toml: config is not UTF-8 text \(byte 0xe9"):
        read_text(tmp_path / "l.toml", "config", ConfigError)
    with pytest.raises(ConfigError, match=r"b\.toml: config is a binary file"):
        read_text(tmp_path / "b.toml", "config", ConfigError)
    (tmp_path / "ok.toml").write_text("name = 'café'\n", encoding="utf-8")
    assert read_text(tmp_path / "ok.toml", "config", ConfigError) == "name = 'café'\n"


def test_first_line() -> None:
    assert first_line(ValueError("")) == "ValueError"
    assert first_line("*** in database main ***\nPage 3: btree\nmore") == "Page 3: btree"
    assert first_line("\n  model failed: x  \nTraceback ...") == "model failed: x"
    assert first_line("y" * 500, limit=10) == "yyyyyyy..."


@pytest.mark.parametrize(
    ("check", "message"),
    [
        (lambda: number(True, "t"), "t: expected a finite number, got True"),
        (lambda: number(float("nan"), "t", 0), "t: expected a finite number >= 0, got nan"),
        (lambda: number(10**400, "t"), "t: expected a finite number, got 1000"),
        (lambda: number(0.0, "c", 0.0, lo_open=True), "c: expected a number > 0, got 0.0"),
        (lambda: integer(1.0, "n", 1), "n: expected an integer, got 1.0"),
        (lambda: integer(2**70, "seed", 0, 2**63 - 1), "seed: expected an integer between 0 and"),
        (lambda: parse_integer("two", "LAYER"), "LAYER: expected an integer, got 'two'"),
        (lambda: knob("1e9"), "knob value: expected a number between -100 and 100, got '1e9'"),
        (lambda: knob("inf"), "knob value: expected a finite number between -100 and 100"),
    ],
)
def test_number_checks_say_what_was_expected(check, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        check()
    assert str(info.value).startswith(message), str(info.value)


def test_good_numbers_pass_through() -> None:
    assert knob("-35.5") == -35.5 and knob(100) == 100.0
    assert integer(0, "x", 0, 3) == 0 and number(1, "x", 0, 1) == 1.0

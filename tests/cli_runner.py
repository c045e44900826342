"""The `steertui` console entry point run in-process, as a user runs it, for the CLI tests."""

from __future__ import annotations

import sys

import pytest


def in_process(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    """Run `steertui ARGS...`; returns (exit code, stdout, stderr)."""
    from steertui.cli import main

    monkeypatch.setattr(sys, "argv", ["steertui", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err

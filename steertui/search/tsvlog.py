"""The TSV log: one row per trial, AutoSteer's columns (iteration, score, status, description)
followed by ours. Each row is flushed and fsynced before the next trial starts; on resume the
file is rewritten from the database, which is the truth."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from pathlib import Path

from steertui.search.events import TrialRecord

COLUMNS = (
    "iteration",
    "score",
    "status",
    "description",
    "best_score",
    "duration_s",
    "error",
    "candidate",
)


def _cell(text: str) -> str:
    return " ".join(text.replace("\t", " ").splitlines())


def _num(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "" if value is None else str(value)
    return f"{value:.6g}"


def format_row(record: TrialRecord, best_score: float | None) -> str:
    cells = (
        str(record.iteration),
        _num(record.score),
        record.status,
        _cell(record.candidate.describe()),
        _num(best_score),
        f"{record.duration:.3f}",
        _cell(record.error or ""),
        json.dumps(record.candidate.to_dict(), separators=(",", ":")),
    )
    return "\t".join(cells) + "\n"


class TSVLog:
    """Appends trial rows durably; `rewrite` replaces the whole file atomically."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._appended = False

    def append(self, record: TrialRecord, best_score: float | None) -> None:
        from steertui.errors import PathError
        from steertui.files import open_append

        exists = self.path.exists()
        regular = not exists or self.path.is_file()
        # a device or FIFO written through gets the header once per run
        new = (not exists or self.path.stat().st_size == 0) if regular else not self._appended
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # created 0600 from the start (like the database and the vectors): never 0644
            fd = open_append(self.path)
        except OSError as exc:
            raise PathError(f"cannot write TSV log {self.path}: {exc.strerror or exc}") from None
        self._appended = True
        with os.fdopen(fd, "a", encoding="utf-8") as f:
            if new:
                f.write("\t".join(COLUMNS) + "\n")
            f.write(format_row(record, best_score))
            f.flush()
            if regular:  # a pipe or a device cannot be fsynced (EINVAL)
                os.fsync(f.fileno())

    def rewrite(self, rows: Iterable[tuple[TrialRecord, float | None]]) -> None:
        from steertui.files import atomic_path

        with atomic_path(self.path, "TSV log") as tmp, open(tmp, "w", encoding="utf-8") as f:
            f.write("\t".join(COLUMNS) + "\n")
            for record, best in rows:
                f.write(format_row(record, best))
            f.flush()
            os.fsync(f.fileno())


def read_tsv(path: str | os.PathLike[str]) -> list[dict[str, str]]:
    """The rows of a TSV log as dicts keyed by column (a torn last line is dropped)."""
    lines = Path(path).read_text(encoding="utf-8").split("\n")
    if not lines or not lines[0]:
        return []
    header = lines[0].split("\t")
    rows = []
    for line in lines[1:]:
        cells = line.split("\t")
        if len(cells) == len(header):
            rows.append(dict(zip(header, cells, strict=True)))
    return rows

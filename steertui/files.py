"""Files a command reads or writes: the one atomic write, and the checks a path gets where it
enters (an option, a config key), so a bad path is one `PathError` line before any work.

Headless: no torch, no rich, no textual.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from steertui.errors import PathError, SteertuiError


def write_problem(folder: Path, create: bool = True) -> str | None:
    """Why no file can be made in `folder` (created first when `create`), or None when one can.

    A real probe (create and remove a temporary file), not `os.access`: root passes `access`
    on a read-only mount or in `/proc`, and a path below a regular file fails only when used.
    """
    if create:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return f"{exc.strerror or exc}: {exc.filename or folder}"
    try:
        fd, probe = tempfile.mkstemp(prefix=".steertui-write-check-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return f"{exc.strerror or exc}: {folder}"
    return None


def _existing_ancestor(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(path.anchor or ".")


def output_file(path: str | os.PathLike[str], what: str = "output file") -> Path:
    """`path` as a file a command may write: not a folder, below a folder that exists (or can
    be made) and takes a new file. Nothing is created; else one `PathError` line."""
    raw = os.fspath(path)
    if not raw.strip():
        raise PathError(f"{what}: expected a file path, got an empty string")
    p = Path(raw).expanduser()
    if p.is_dir():
        raise PathError(f"cannot write {what} {p}: it is a folder, expected a file path")
    folder = _existing_ancestor(p.parent)
    if not folder.is_dir():
        raise PathError(f"cannot write {what} {p}: {folder} is a file, not a folder")
    problem = write_problem(folder, create=False)
    if problem is not None:
        raise PathError(f"cannot write {what} {p} ({problem})")
    return p


def input_file(
    path: str | os.PathLike[str],
    what: str = "input file",
    error: type[SteertuiError] = PathError,
) -> Path:
    """`path` as a file a command reads: it exists, is a file and can be opened."""
    raw = os.fspath(path)
    if not raw.strip():
        raise error(f"{what}: expected a file path, got an empty string")
    p = Path(raw).expanduser()
    if p.is_dir():
        raise error(f"{p}: {what} is a folder, expected a file")
    if not p.exists():
        raise error(f"{p}: {what} not found")
    if not p.is_file():  # opening a FIFO would wait for a writer forever
        raise error(
            f"{p}: {what} is not a regular file (a FIFO, device or socket), expected a file"
        )
    try:
        with open(p, "rb"):
            pass
    except OSError as exc:
        raise error(f"{p}: {what} cannot be read ({exc.strerror or exc})") from None
    return p


def read_text(
    path: str | os.PathLike[str],
    what: str = "input file",
    error: type[SteertuiError] = PathError,
) -> str:
    """The UTF-8 text of a file a command reads; a binary or otherwise encoded file is one line."""
    p = input_file(path, what, error)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise error(f"{p}: {what} cannot be read ({exc.strerror or exc})") from None
    if b"\x00" in data:
        raise error(f"{p}: {what} is a binary file, expected UTF-8 text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(
            f"{p}: {what} is not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start})"
        ) from None


@contextlib.contextmanager
def atomic_path(
    path: str | os.PathLike[str], what: str = "file", error: type[SteertuiError] = PathError
) -> Iterator[Path]:
    """A temporary path beside `path` for the block to write; renamed onto `path` (one atomic
    `os.replace`) when the block ends normally, removed when it raises. A crash never leaves
    half a file at `path`. A place that cannot be written is one `error` line."""
    target = Path(path)
    folder = _existing_ancestor(target.parent)
    if not folder.is_dir():
        raise error(f"cannot write {what} {target}: {folder} is a file, not a folder")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
    except OSError as exc:
        raise error(f"cannot write {what} {target}: {exc.strerror or exc}") from None
    try:
        yield Path(tmp)
        try:
            os.replace(tmp, target)
        except OSError as exc:
            raise error(f"cannot write {what} {target}: {exc.strerror or exc}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_atomic(
    path: str | os.PathLike[str], data: bytes | str, what: str = "file", mode: int | None = None
) -> Path:
    """Write `data` (text as UTF-8) to `path` durably and atomically (temporary file, fsync,
    `os.replace`); `mode` sets the permissions (a temporary file starts private, 0o600)."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    target = Path(path)
    with atomic_path(target, what) as tmp:
        try:
            with open(tmp, "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            if mode is not None:
                os.chmod(tmp, mode)
        except OSError as exc:
            raise PathError(f"cannot write {what} {target}: {exc.strerror or exc}") from None
    return target

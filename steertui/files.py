"""Files a command reads or writes: the one atomic write, and the checks a path gets where it
enters (an option, a config key), so a bad path is one `PathError` line before any work.

A path a user names is never replaced by something else: a regular file is replaced atomically
(through a symbolic link, at the file it points to), a character device or a FIFO (`/dev/null`,
`/dev/stdout`, a named pipe) is written through as `cp` does, and anything else (a folder, a
block device, a socket, a dangling link) is refused in one line.

Headless: no torch, no rich, no textual.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from steertui.errors import PathError, SteertuiError

_VIRTUAL_FS = ("proc", "sysfs", "devpts", "cgroup", "cgroup2", "debugfs", "securityfs", "configfs")


def _mount_type(folder: Path) -> str | None:
    """The file system type of the mount holding `folder` (Linux), or None where unknown."""
    try:
        lines = Path("/proc/self/mounts").read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    where = os.path.realpath(folder)
    best, kind = "", None
    for line in lines:
        parts = line.split()
        if len(parts) < 3:
            continue
        mount = parts[1].replace("\\040", " ")
        inside = where == mount or where.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best):
            best, kind = mount, parts[2]
    return kind


def _cause(exc: OSError, folder: Path) -> str:
    """Why a file cannot be made in `folder`, from the error a try gave: a kernel file system
    (`/proc`, `/sys`) is named as such, not as the 'No such file or directory' it answers."""
    if exc.errno in (errno.ENOENT, errno.EACCES, errno.EPERM, errno.EROFS) and folder.is_dir():
        kind = _mount_type(folder)
        if kind in _VIRTUAL_FS:
            return f"{folder} is on the kernel's {kind} file system, which holds no user files"
    if exc.errno == errno.ENAMETOOLONG:
        return "the file name is too long"
    return f"{exc.strerror or exc}: {exc.filename or folder}"


def write_problem(folder: Path, create: bool = True) -> str | None:
    """Why no file can be made in `folder` (created first when `create`), or None when one can.

    A real probe (create and remove a temporary file), not `os.access`: root passes `access`
    on a read-only mount or in `/proc`, and a path below a regular file fails only when used.
    """
    if create:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return _cause(exc, folder) if exc.filename is None else _cause(exc, Path(exc.filename))
    try:
        fd, probe = tempfile.mkstemp(prefix=".steertui-write-check-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        exc.filename = None
        return _cause(exc, folder)
    return None


def _existing_ancestor(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(path.anchor or ".")


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    return "a regular file" if stat.S_ISREG(mode) else "not a regular file"


def file_kind(path: Path) -> str:
    """What is at `path`, in words: 'a folder', 'a regular file', 'a character device', ..."""
    try:
        return _kind(os.stat(path).st_mode)
    except OSError:
        return "missing"


def _stat(target: Path, what: str, error: type[SteertuiError]) -> os.stat_result | None:
    """`target`'s status, symbolic links followed; None when nothing is there. A dangling link
    (writing would create a file elsewhere, or replace the link) is one `error` line."""
    try:
        return os.stat(target)
    except NotADirectoryError:  # below a file: said by the caller, which names the file
        return None
    except FileNotFoundError:
        if os.path.islink(target):
            raise error(
                f"cannot write {what} {target}: it is a symbolic link to "
                f"{os.readlink(target)}, which does not exist"
            ) from None
        return None
    except OSError as exc:
        raise error(f"cannot write {what} {target}: {_cause(exc, target.parent)}") from None


def _writes_through(st: os.stat_result | None) -> bool:
    return st is not None and (stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode))


def output_file(path: str | os.PathLike[str], what: str = "output file") -> Path:
    """`path` as a file a command may write: a new or regular file in a folder that exists and
    takes a new file, or a character device or FIFO to write through. Nothing is created;
    else one `PathError` line."""
    raw = os.fspath(path)
    if not raw.strip():
        raise PathError(f"{what}: expected a file path, got an empty string")
    try:
        p = Path(raw).expanduser()
    except RuntimeError:  # `~nosuchuser/x`
        raise PathError(f"{what}: {raw}: no such user's home folder") from None
    st = _stat(p, what, PathError)
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise PathError(f"cannot write {what} {p}: it is a folder, expected a file path")
    if _writes_through(st):
        return p
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise PathError(
            f"cannot write {what} {p}: it is {_kind(st.st_mode)}, expected a regular file, "
            "a character device or a FIFO"
        )
    real = Path(os.path.realpath(p))
    ancestor = _existing_ancestor(real.parent)
    if not ancestor.is_dir():
        raise PathError(f"cannot write {what} {p}: {ancestor} is a file, not a folder")
    if ancestor != real.parent:
        raise PathError(
            f"cannot write {what} {p}: the folder {real.parent} does not exist (create it first)"
        )
    problem = write_problem(real.parent, create=False)
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


def _open_through(target: Path, st: os.stat_result) -> int:
    """A descriptor writing to the device or FIFO `target`. A FIFO nobody reads is refused
    (opening it to write would wait forever): it is opened non-blocking first."""
    if not stat.S_ISFIFO(st.st_mode):
        return os.open(target, os.O_WRONLY | os.O_NOCTTY)
    import fcntl  # POSIX only, as FIFOs are

    fd = os.open(target, os.O_WRONLY | os.O_NONBLOCK)
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)
    return fd


def open_append(path: Path) -> int:
    """A descriptor appending to `path` (a log): a regular file is created private (0o600) if
    missing; a device or a FIFO is written through, a FIFO nobody reads refused (`OSError`
    ENXIO) rather than waited on forever."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    if _writes_through(st):
        assert st is not None
        try:
            return _open_through(path, st)
        except OSError as exc:
            if exc.errno == errno.ENXIO:
                raise OSError(errno.ENXIO, "it is a FIFO that no process is reading") from None
            raise
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)


def _copy_through(tmp: str, target: Path, st: os.stat_result) -> None:
    try:
        fd = _open_through(target, st)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise OSError(errno.ENXIO, "it is a FIFO that no process is reading") from None
        raise
    try:
        with open(tmp, "rb") as src:
            while chunk := src.read(1 << 20):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(
    path: str | os.PathLike[str], what: str = "file", error: type[SteertuiError] = PathError
) -> Iterator[Path]:
    """A temporary path for the block to write, then put in place when the block ends normally
    (removed when it raises): renamed onto `path` (one atomic `os.replace`), so a crash never
    leaves half a file there. A symbolic link is followed (the file it points to is replaced,
    the link stays); a character device or a FIFO is written through, never replaced; any other
    kind of file, or a place that cannot be written, is one `error` line."""
    target = Path(path)
    st = _stat(target, what, error)
    if st is not None and not stat.S_ISREG(st.st_mode) and not _writes_through(st):
        raise error(
            f"cannot write {what} {target}: it is {_kind(st.st_mode)}, expected a regular file, "
            "a character device or a FIFO"
        )
    through = _writes_through(st)
    if not through and os.path.islink(target):
        target = Path(os.path.realpath(target))
    folder = _existing_ancestor(target.parent)
    if not through and not folder.is_dir():
        raise error(f"cannot write {what} {target}: {folder} is a file, not a folder")
    try:
        if through:  # the data goes to the device once complete; never a file beside it
            fd, tmp = tempfile.mkstemp(prefix=".steertui-", suffix=".tmp")
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
    except OSError as exc:
        raise error(f"cannot write {what} {target}: {_cause(exc, target.parent)}") from None
    try:
        yield Path(tmp)
        try:
            if through:
                assert st is not None
                _copy_through(tmp, target, st)
            else:
                os.replace(tmp, target)
        except OSError as exc:
            raise error(f"cannot write {what} {target}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def write_atomic(
    path: str | os.PathLike[str], data: bytes | str, what: str = "file", mode: int | None = None
) -> Path:
    """Write `data` (text as UTF-8) to `path` durably and atomically (temporary file, fsync,
    `os.replace`; a device or FIFO written through); `mode` sets the permissions of a file made
    (a temporary file starts private, 0o600)."""
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

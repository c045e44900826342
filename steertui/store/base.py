"""Opening the database safely, one connection per thread, and write transactions that retry.

Before anything is written, the file is inspected through a read-only connection: a file that is
not SQLite, is corrupt, belongs to another program or was written by a newer steertui is refused
with one line and left byte for byte as it was.

One pool of connections per database file per process. Closing any descriptor of a file drops
every POSIX lock the process holds on it (SQLite's "POSIX advisory locks" hazard): a process that
opened its live database a second way and closed it would lose its locks, and another process
closing its connection would then checkpoint and delete the `-wal` file under it, silently losing
its later commits. So every `Store.open` of a file that this process already has open shares that
file's pool, and the file is inspected (its header read directly) only while no connection of this
process is open on it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self, TypeVar
from urllib.parse import quote

from steertui.errors import StoreError, first_line
from steertui.files import atomic_path, file_kind, write_problem
from steertui.store.migrations import (
    APPLICATION_ID,
    MIGRATIONS,
    SCHEMA_VERSION,
    TABLES,
    application_id,
    migrate,
    schema_at,
    user_version,
)
from steertui.store.models import MalformedRow

T = TypeVar("T")
log = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 30.0
RETRIES = 8
SQLITE_HEADER = b"SQLite format 3\x00"


def now() -> str:
    """The current time as an ISO-8601 UTC string (sortable as text)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):  # numpy arrays and scalars, torch tensors
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, set | frozenset):
        return sorted(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _finite_json(value: Any) -> Any:
    """NaN and infinities become null: JSON cannot hold them and exports must stay valid JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_json(v) for v in value]
    return value


def dumps(value: Any, what: str) -> str | None:
    """JSON text for a dict column; a value JSON cannot hold is a StoreError naming the column."""
    if value is None:
        return None
    try:
        plain = json.loads(json.dumps(value, default=_json_default))
        return json.dumps(_finite_json(plain), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"{what} cannot be stored as JSON: {exc}") from None


def measurement(value: Any, what: str) -> float | None:
    """A score, speed or duration; NaN or infinite (a failed measurement) is stored as NULL."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise StoreError(f"{what} must be a number, got {value!r}") from None
    return number if math.isfinite(number) else None


def finite(value: Any, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise StoreError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise StoreError(f"{what} must be a finite number, got {value!r}")
    return number


def _is_busy(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _size_limit() -> int | None:
    """The process's file-size limit (`ulimit -f`) in bytes, or None when there is none."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    except (ImportError, OSError, ValueError):
        return None
    return None if soft == resource.RLIM_INFINITY else int(soft)


def sqlite_cause(exc: sqlite3.Error) -> str:
    """SQLite's error as its real cause, in words: a disk I/O error is not corruption (a full
    disk, a file-size limit, a failing device), a read-only or unopenable file is about
    permissions."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    text = first_line(exc)
    if code == sqlite3.SQLITE_IOERR:
        limit = _size_limit()
        if limit is not None:
            return (
                f"{text}: the file-size limit of this process (ulimit -f, {limit} bytes) "
                "stopped a write; the database is as it was before that write"
            )
        return f"{text}: the disk could not be read or written (is it full or failing?)"
    if code == sqlite3.SQLITE_FULL:
        return f"{text}: the disk is full"
    if code in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM, sqlite3.SQLITE_CANTOPEN):
        return f"{text} (permission denied, or a read-only folder)"
    return text


def _corrupt(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    return code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


def _ro_connect(path: Path, immutable: bool = False) -> sqlite3.Connection:
    uri = f"file:{quote(str(path))}?mode=ro" + ("&immutable=1" if immutable else "")
    return sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)


def inspect_file(path: Path) -> int:
    """The schema version of an existing database (0 for a missing or empty file).

    Raises StoreError, without writing anything, for a file that is not SQLite, is corrupt or is
    another program's database. A version newer than this code is returned, not refused. A file
    this process already has open is asked through its own connection, never reopened.
    """
    path = Path(path).expanduser().absolute()
    with _POOLS_LOCK:
        pool = _POOLS.get(_key(path))
        if pool is not None:
            return int(pool.connection().execute("PRAGMA user_version").fetchone()[0])
        return _inspect_unopened(path)


def _inspect_unopened(path: Path) -> int:
    """`inspect_file` for a file with no connection of this process (the caller holds the lock)."""
    if path.parent.exists() and not path.parent.is_dir():
        raise StoreError(
            f"{path.parent} is {file_kind(path.parent)}, expected the folder that holds the "
            "session database"
        )
    if path.is_dir():
        raise StoreError(f"{path} is a directory, expected the session database file")
    if not path.exists() or path.stat().st_size == 0:
        return 0
    header = _header(path, strict=True)
    if not header.startswith(SQLITE_HEADER):
        raise StoreError(f"{path} is not a SQLite database (not a steertui session store)")
    if len(header) < 100:
        raise StoreError(f"{path} is corrupt: truncated SQLite header")
    # Without a -wal file no connection is open, so the file is read as immutable: a read-only
    # WAL connection would otherwise leave empty -wal/-shm files beside a file we refuse.
    wal = Path(f"{path}-wal")
    immutable = not wal.exists()
    try:
        return _inspect(path, immutable)
    except StoreError:
        # An immutable read takes no lock: if a writer opened the file meanwhile (a -wal appeared
        # or the header moved), what we saw may be torn, so look again with proper locking.
        if immutable and (wal.exists() or _header(path) != header):
            return _inspect(path, False)
        raise


def _header(path: Path, strict: bool = False) -> bytes:
    """The file's first 100 bytes. Only while no connection of this process is open on it.
    `strict`: a file that cannot be read is a StoreError saying why (not "not SQLite")."""
    try:
        with open(path, "rb") as handle:
            return handle.read(100)
    except OSError as exc:
        if strict:
            raise StoreError(f"{path} cannot be read: {exc.strerror or exc}") from None
        return b""


def _inspect(path: Path, immutable: bool) -> int:
    try:
        conn = _ro_connect(path, immutable)
    except sqlite3.Error as exc:
        raise StoreError(f"{path} cannot be opened: {first_line(exc)}") from None
    try:
        # One read transaction, so the id, the version and the tables come from one snapshot.
        conn.execute("BEGIN")
        app_id = application_id(conn)
        version = user_version(conn)
        tables = {
            row[0]
            for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if not row[0].startswith("sqlite_")
        }
        if app_id != APPLICATION_ID:
            if app_id == 0 and version == 0 and not tables:
                return 0
            raise StoreError(f"{path} is another program's SQLite database, not a steertui one")
        if version > SCHEMA_VERSION:
            return version
        expected = _tables_at(version)
        missing = sorted(expected - tables)
        if missing and version >= 0:
            raise StoreError(f"{path} is corrupt: schema v{version} lacks table {missing[0]}")
        _check_version(path, conn, version, tables)
        problems = [str(row[0]) for row in conn.execute("PRAGMA quick_check(3)")]
        if problems != ["ok"]:
            raise StoreError(f"{path} is corrupt: {first_line(chr(10).join(problems))}")
        return version
    except sqlite3.DatabaseError as exc:
        if _is_busy(exc):
            raise StoreError(f"{path} is locked by another process: {first_line(exc)}") from None
        if _corrupt(exc) or not isinstance(exc, sqlite3.OperationalError):
            raise StoreError(f"{path} is corrupt: {first_line(exc)}") from None
        raise StoreError(f"{path} cannot be read: {sqlite_cause(exc)}") from None
    finally:
        conn.close()


def _columns(conn: sqlite3.Connection, tables: Iterable[str]) -> dict[str, frozenset[str]]:
    return {
        table: frozenset(str(row[1]) for row in conn.execute(f"PRAGMA table_info({table})"))
        for table in tables
    }


def _check_version(path: Path, conn: sqlite3.Connection, version: int, tables: set[str]) -> None:
    """A file whose `user_version` is not what its tables are (set by hand, by another tool) is
    refused with the version it claims and the one its tables match, never migrated into
    "table already exists" or "duplicate column name"."""
    if version < 0:
        raise StoreError(
            f"{path} claims schema v{version} (its user_version), which no steertui writes: "
            f"expected v0 to v{SCHEMA_VERSION}"
        )
    ours = tables & set(TABLES)
    actual = _columns(conn, ours)
    if actual == schema_at(version):
        return
    match = [v for v in range(SCHEMA_VERSION + 1) if schema_at(v) == actual]
    seen = f"its tables are those of v{match[0]}" if match else "its tables match no version"
    raise StoreError(
        f"{path} claims schema v{version} (its user_version) but {seen}; expected v{version}'s "
        "tables: restore a backup (steertui.db.bak-vN) or set user_version to what it holds"
    )


def _tables_at(version: int) -> set[str]:
    """Tables a database of `version` must have, read from the migrations' CREATE TABLE lines."""
    names: set[str] = set()
    for migration in MIGRATIONS[:version]:
        for statement in migration.statements:
            words = statement.split()
            if words[:2] == ["CREATE", "TABLE"]:
                names.add(words[2])
    return names & set(TABLES)


def backup_file(src: sqlite3.Connection, path: Path, dest: Path) -> Path:
    """A consistent copy of the database at `path` (WAL content included), read through `src`,
    a connection of its pool, and written atomically to `dest`."""
    with atomic_path(dest, "database backup") as tmp:
        try:
            out = sqlite3.connect(tmp)
            try:
                src.backup(out)
            finally:
                out.close()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot back up {path} to {dest}: {exc}") from None
    return dest


def backup_path(path: Path, version: int) -> Path:
    return path.with_name(f"{path.name}.bak-v{version}")


def _create_private(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _make_private(path: Path) -> None:
    for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        with contextlib.suppress(FileNotFoundError, PermissionError):
            if file.stat().st_mode & 0o077:
                os.chmod(file, 0o600)


def _read_only_reason(path: Path) -> str | None:
    """Why the existing database at `path` cannot be written by this process, or None: the
    file itself, or its folder (SQLite makes `-wal` and `-shm` files beside it). A real try,
    not `os.access`, which root passes."""
    try:
        os.close(os.open(path, os.O_RDWR))
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return f"{exc.strerror or exc}: {path}"
        raise
    return write_problem(path.parent, create=False)


def _key(path: Path) -> str:
    """One key per file, however it is spelled (relative, `..`, symbolic links)."""
    return os.path.realpath(path)


class _Pool:
    """This process's connections to one database file: one per thread, shared by every `Store`
    opened on the file, closed when the last of them closes."""

    def __init__(self, path: Path, readonly: str | None = None) -> None:
        self.path = path
        self.readonly = readonly
        """Why the file is opened to read only (it cannot be written here), or None."""
        self.users = 0
        self._local = threading.local()
        self._lock = threading.Lock()
        self._conns: list[tuple[threading.Thread, sqlite3.Connection]] = []

    def _connect(self) -> sqlite3.Connection:
        try:
            if self.readonly is not None:
                conn = self._connect_read_only()
            else:
                conn = sqlite3.connect(
                    self.path,
                    timeout=BUSY_TIMEOUT_S,
                    isolation_level=None,
                    check_same_thread=False,
                )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {self.path}: {sqlite_cause(exc)}") from None
        conn.row_factory = sqlite3.Row
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            conn.execute("PRAGMA foreign_keys = ON")
            # In WAL mode NORMAL survives a killed process; only a power cut may drop the last
            # commit.
            conn.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(f"cannot open {self.path}: {sqlite_cause(exc)}") from None
        return conn

    def _connect_read_only(self) -> sqlite3.Connection:
        """A connection that never writes: SQLite reads a WAL database read-only while its
        `-shm` exists (a writer elsewhere has it open); with no `-wal` content to read (the last
        writer checkpointed and closed) the file is read as immutable, which needs no `-shm`."""
        uri = f"file:{quote(str(self.path))}?mode=ro"
        conn = sqlite3.connect(
            uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.Error:
            conn.close()
            wal = Path(f"{self.path}-wal")
            if wal.exists() and wal.stat().st_size > 0:
                raise
        return sqlite3.connect(
            uri + "&immutable=1",
            uri=True,
            timeout=BUSY_TIMEOUT_S,
            isolation_level=None,
            check_same_thread=False,
        )

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, made on first use."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                # Threads come and go (one per app worker): close what finished threads left.
                alive = []
                for thread, other in self._conns:
                    if thread.is_alive():
                        alive.append((thread, other))
                    else:
                        other.close()
                alive.append((threading.current_thread(), conn))
                self._conns = alive
        return conn

    def close_all(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, []
        for _, conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()


_POOLS: dict[str, _Pool] = {}
_POOLS_LOCK = threading.RLock()


class StoreBase:
    """Reads, and write transactions with retries on busy, over this process's pool for the file."""

    path: Path
    migrated_from: int
    """The schema version the file had before this open (equal to SCHEMA_VERSION if current)."""
    backup: Path | None
    """Where the file was copied before a migration, if one ran on existing data."""

    def __init__(self, path: Path, pool: _Pool) -> None:
        self.path = path
        self.migrated_from = SCHEMA_VERSION
        self.backup = None
        self._pool = pool
        self._closed = False

    @classmethod
    def open(cls, path: Path | str, *, backup: bool = True) -> Self:
        """Open (creating if needed) and migrate the database at `path`.

        An existing database older than this code is first copied to `<name>.bak-v<N>`
        unless `backup` is False. A file this process already has open is not inspected again:
        the new store shares its connections.
        """
        path = Path(path).expanduser().absolute()
        with _POOLS_LOCK:
            pool = _POOLS.get(_key(path))
            if pool is not None:
                pool.users += 1
                return cls(path, pool)
            try:
                version = _inspect_unopened(path)
                if version > SCHEMA_VERSION:
                    raise _newer(path, version)
                readonly = _read_only_reason(path) if version > 0 else None
                if readonly is None:
                    _create_private(path)
                elif version < SCHEMA_VERSION:
                    raise StoreError(
                        f"{path} is at schema v{version} and needs upgrading to "
                        f"v{SCHEMA_VERSION}, but it cannot be written ({readonly})"
                    )
            except OSError as exc:
                raise StoreError(f"cannot open {path}: {exc.strerror or exc}") from None
            pool = _Pool(path, readonly)
            pool.users = 1
            _POOLS[_key(path)] = pool
            store = cls(path, pool)
            try:
                store._prepare(version, backup)
            except BaseException:
                store.close()
                raise
        if store.read_only is None:
            _make_private(path)
        return store

    @property
    def read_only(self) -> str | None:
        """Why this store only reads (its file or folder cannot be written here), or None."""
        return self._pool.readonly

    def _prepare(self, version: int, backup: bool) -> None:
        conn = self._conn()
        if self._pool.readonly is not None:
            return
        self._retry(lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone())
        if version >= SCHEMA_VERSION:
            return
        if backup and version > 0:
            self.backup = backup_file(conn, self.path, backup_path(self.path, version))

        def upgrade(c: sqlite3.Connection) -> tuple[int, int]:
            current = user_version(c)
            if current > SCHEMA_VERSION:
                raise _newer(self.path, current)
            return migrate(c)

        self.migrated_from, _ = self._write(upgrade)

    # connections ---------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError(f"the session store {self.path} is closed")
        return self._pool.connection()

    def close(self) -> None:
        """Let go of the file; the last store of this process on it closes every connection.

        Using this store afterwards is a StoreError."""
        with _POOLS_LOCK:
            if self._closed:
                return
            self._closed = True
            pool = self._pool
            pool.users -= 1
            if pool.users > 0:
                return
            if _POOLS.get(_key(self.path)) is pool:
                del _POOLS[_key(self.path)]
            # Under the lock: a new pool must not inspect the file while these are still open.
            pool.close_all()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # reads and writes ----------------------------------------------------------------------

    def _retry(self, fn: Callable[[], T]) -> T:
        delay = 0.01
        for attempt in range(RETRIES + 1):
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or attempt == RETRIES:
                    raise StoreError(f"{self.path}: {sqlite_cause(exc)}") from None
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
        raise AssertionError("unreachable")

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        conn = self._conn()
        try:
            return self._retry(lambda: conn.execute(sql, params).fetchall())
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: {sqlite_cause(exc)}") from None

    @staticmethod
    def _each(
        rows: Iterable[sqlite3.Row],
        mapper: Callable[[sqlite3.Row], T],
        skipped: list[MalformedRow] | None = None,
    ) -> list[T]:
        """`mapper` over `rows` for a list: a malformed row is left out (appended to `skipped`,
        or logged), so one bad row never makes the rest unreadable."""
        out: list[T] = []
        for row in rows:
            try:
                out.append(mapper(row))
            except MalformedRow as exc:
                if skipped is None:
                    log.warning("%s", exc)
                else:
                    skipped.append(exc)
        return out

    def _row(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Row | None:
        rows = self._rows(sql, params)
        return rows[0] if rows else None

    def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` in one BEGIN IMMEDIATE transaction: all of it is committed or none of it.

        The busy timeout covers ordinary contention; a busy error that still escapes retries the
        whole transaction with backoff.
        """
        conn = self._conn()
        if self._pool.readonly is not None:
            raise StoreError(
                f"the session database {self.path} is read-only here ({self._pool.readonly}): "
                "nothing was changed"
            )

        def attempt() -> T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return result

        try:
            return self._retry(attempt)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: {sqlite_cause(exc)}") from None

    @property
    def schema_version(self) -> int:
        return int(self._rows("PRAGMA user_version")[0][0])


def _newer(path: Path, version: int) -> StoreError:
    return StoreError(
        f"{path} has schema v{version}, newer than this steertui reads (v{SCHEMA_VERSION}); "
        "upgrade steertui to open it"
    )

"""The data home: `--home`, else `STEERTUI_HOME`, else the user data directory.

A home holds `vectors/` (built vectors, user dimensions) and `sessions/` (the SQLite
database): the same layout as the repository's top level.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from steertui.errors import SteertuiError
from steertui.files import file_kind, write_problem


class HomeError(SteertuiError):
    """The data home (or another folder a command writes to) cannot be written."""


def require_writable(folder: Path, what: str = "folder") -> Path:
    """Create `folder` if needed and prove a file can be made in it; else one `HomeError` line."""
    if folder.exists() and not folder.is_dir():
        raise HomeError(f"{what} {folder} is a file: expected a folder")
    problem = write_problem(folder)
    if problem is not None:
        raise HomeError(f"{what} {folder} is not writable ({problem})")
    return folder


def default_home() -> Path:
    env = os.environ.get("STEERTUI_HOME")
    if env:
        return Path(env).expanduser()
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "steertui"
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "steertui"
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "steertui"


@dataclass(frozen=True)
class Home:
    """Paths inside one data home. Nothing is created until `ensure()` is called."""

    root: Path

    @classmethod
    def resolve(cls, home: str | os.PathLike[str] | None = None) -> Home:
        """The home `home` names (None: the default). An empty name, a `~user` that does not
        exist, or a path that exists and is not a folder (a file, `/dev/null`) is one
        `HomeError` line: a home is never silently the default one, nor a device."""
        if home is None:
            root = default_home()
        else:
            raw = os.fspath(home)
            if not raw.strip():
                raise HomeError("--home: expected a folder path, got an empty string")
            root = Path(raw)
        try:
            root = root.expanduser().resolve()
        except RuntimeError:  # `~nosuchuser/x`
            raise HomeError(f"the data home {root}: no such user's home folder") from None
        except OSError as exc:
            raise HomeError(f"the data home {root} cannot be used ({exc.strerror})") from None
        if root.exists() and not root.is_dir():
            raise HomeError(
                f"the data home {root} is {file_kind(root)}, expected a folder "
                "(choose another with --home or STEERTUI_HOME)"
            )
        return cls(root)

    @property
    def vectors_dir(self) -> Path:
        return self.root / "vectors"

    @property
    def sessions_dir(self) -> Path:
        return self.root / "sessions"

    @property
    def models_dir(self) -> Path:
        """Models steertui converted (a `.gguf` file dequantized to safetensors)."""
        return self.root / "models"

    @property
    def db_path(self) -> Path:
        return self.sessions_dir / "steertui.db"

    def ensure(self) -> Home:
        """Create `vectors/` and `sessions/` and check both can be written, or raise `HomeError`.

        Every command that writes calls this first, before it loads a model or computes
        anything, so a read-only home (or a home path that is a file) is one line, at once.
        """
        for folder in (self.vectors_dir, self.sessions_dir):
            problem = write_problem(folder)
            if problem is not None:
                raise HomeError(
                    f"the data home {self.root} is not writable ({problem}); "
                    "choose another with --home or STEERTUI_HOME"
                )
        return self


def repo_vectors_dir() -> Path:
    """The dimensions shipped with steertui (the repository's top-level `vectors/`).

    A wheel carries them as `steertui/data/vectors` (setup.py copies them at build time);
    a checkout or an editable install has no such folder and reads `vectors/` in place.
    The packaged copy is looked for first, so an installed steertui never picks up an
    unrelated `vectors/` that happens to sit beside it in site-packages.
    """
    here = Path(__file__).resolve().parent
    for candidate in (here / "data" / "vectors", here.parent / "vectors"):
        if candidate.is_dir():
            return candidate
    return here.parent / "vectors"

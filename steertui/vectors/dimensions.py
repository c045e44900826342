"""Preference dimensions: TOML files of contrastive examples, and the library that finds them.

A dimension file names two poles and gives examples of each (see `vectors/README.md`). A
malformed file raises `VectorError` with the file, the line and the field at fault.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from steertui.errors import SteertuiError, VectorError
from steertui.home import Home, repo_vectors_dir
from steertui.hub import is_toy_path
from steertui.validation import NAME_RULE, is_name

TOY_MODEL = "toy"
_TOP_KEYS = {
    "name",
    "negative",
    "positive",
    "description",
    "model",
    "push",
    "examples",
    "positive_texts",
    "negative_texts",
    "questions",
}
_EXAMPLE_KEYS = ("prompt", "positive", "negative")


class Example(NamedTuple):
    """One contrastive pair: the same user prompt answered towards each pole."""

    prompt: str
    positive: str
    negative: str


@dataclass(frozen=True)
class Dimension:
    """A preference dimension read from one TOML file."""

    name: str
    negative: str
    positive: str
    description: str = ""
    model: str | None = None
    # the knob's full-scale push (residual-norm units, summed over the recommended layers);
    # None: the library default. The adaptive search replaces it per model.
    push: float | None = None
    examples: list[Example] = field(default_factory=list)
    positive_texts: list[str] = field(default_factory=list)
    negative_texts: list[str] = field(default_factory=list)
    questions: list[str] = field(default_factory=list)
    path: Path | None = None
    content_hash: str = ""

    @property
    def poles(self) -> tuple[str, str]:
        return (self.negative, self.positive)

    def applies_to(self, model_id: str) -> bool:
        """Whether this dataset is written for `model_id` (toy language vs. real chat models)."""
        toy = is_toy_model(model_id)
        if self.model is None:
            return not toy
        if self.model == TOY_MODEL:
            return toy
        return self.model == model_id


def check_name(
    name: object, what: str = "dimension name", error: type[SteertuiError] = VectorError
) -> str:
    """`name` if it is a name (see `NAME_RULE`), else `error` saying what a name is.

    The one check for every place a dimension name (or another name that becomes part of a file
    name in the home, such as an imported vector's method) enters: CLI arguments, dimension
    files, search configs, vector imports. A path, a glob or a control character never gets by.
    """
    if isinstance(name, str) and is_name(name):
        return name
    shown = repr(name) if isinstance(name, str) else f"of type {type(name).__name__}"
    raise error(f"{what} {shown} is not valid: expected {NAME_RULE}")


def is_toy_model(model_id: str) -> bool:
    """True for the bundled toy model, named `toy` or by the path of its weights."""
    return model_id == TOY_MODEL or is_toy_path(model_id)


def content_hash(
    name: str,
    examples: list[Example],
    positive_texts: list[str],
    negative_texts: list[str],
    push: float | None = None,
) -> str:
    """SHA-256 of what extraction reads, so edits to comments or questions do not rebuild."""
    payload: dict[str, Any] = {
        "name": name,
        "examples": [[e.prompt, e.positive, e.negative] for e in examples],
        "positive_texts": positive_texts,
        "negative_texts": negative_texts,
    }
    if push is not None:  # absent from older hashes, so their cached vectors stay valid
        payload["push"] = push
    blob = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class _Locator:
    """Finds the line of a key in the TOML text, for error messages."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def _find(
        self, pattern: re.Pattern[str], start: int = 0, stop: int | None = None
    ) -> int | None:
        stop = len(self.lines) if stop is None else stop
        for i in range(start, stop):
            if pattern.match(self.lines[i]):
                return i
        return None

    def _table_start(self, table: str, index: int) -> tuple[int, int] | None:
        header = re.compile(rf"^\s*\[\[\s*{re.escape(table)}\s*\]\]")
        starts = [i for i, line in enumerate(self.lines) if header.match(line)]
        if index >= len(starts):
            return None
        start = starts[index]
        nxt = self._find(re.compile(r"^\s*\["), start + 1)
        return start, (len(self.lines) if nxt is None else nxt)

    def line(self, key: str, table: str | None = None, index: int | None = None) -> int:
        key_re = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
        if table is not None and index is not None:
            span = self._table_start(table, index)
            if span is None:
                return 1
            found = self._find(key_re, span[0] + 1, span[1])
            return (found if found is not None else span[0]) + 1
        first_table = self._find(re.compile(r"^\s*\["))
        found = self._find(key_re, 0, first_table)
        if found is None:
            found = self._find(re.compile(rf"^\s*\[\[?\s*{re.escape(key)}\s*\]\]?"))
        return 1 if found is None else found + 1


def _fail(path: Path, line: int, fld: str, problem: str) -> VectorError:
    return VectorError(f"{path}:{line}: field '{fld}': {problem}")


def _string(value: Any, path: Path, line: int, fld: str, required: bool = True) -> str:
    if not isinstance(value, str):
        got = type(value).__name__
        raise _fail(path, line, fld, f"expected a string, got {got}")
    if required and not value.strip():
        raise _fail(path, line, fld, "expected a non-empty string")
    return value


def _string_list(value: Any, path: Path, line: int, fld: str) -> list[str]:
    if not isinstance(value, list):
        raise _fail(path, line, fld, f"expected a list of strings, got {type(value).__name__}")
    out = []
    for i, item in enumerate(value):
        out.append(_string(item, path, line, f"{fld}[{i}]"))
    return out


def parse_dimension(text: str, path: Path) -> Dimension:
    """Parse and validate the text of a dimension file (`path` is used in messages)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        line = int(match.group(1)) if match else 1
        raise _fail(path, line, "(syntax)", f"not valid TOML: {exc}") from None
    loc = _Locator(text)

    for key in data:
        if key not in _TOP_KEYS:
            expected = ", ".join(sorted(_TOP_KEYS))
            raise _fail(path, loc.line(key), key, f"unknown key (expected one of {expected})")
    for key in ("name", "negative", "positive"):
        if key not in data:
            raise _fail(path, 1, key, "missing (every dimension names itself and its two poles)")
    name = _string(data["name"], path, loc.line("name"), "name")
    try:
        check_name(name, "")
    except VectorError as exc:
        raise _fail(path, loc.line("name"), "name", str(exc).lstrip()) from None
    negative = _string(data["negative"], path, loc.line("negative"), "negative")
    positive = _string(data["positive"], path, loc.line("positive"), "positive")
    description = _string(
        data.get("description", ""), path, loc.line("description"), "description", required=False
    )
    model = data.get("model")
    if model is not None:
        model = _string(model, path, loc.line("model"), "model")
    push = data.get("push")
    if push is not None:
        if isinstance(push, bool) or not isinstance(push, int | float) or not 0 < push <= 10:
            raise _fail(
                path, loc.line("push"), "push", f"expected a number in (0, 10], got {push!r}"
            )
        push = float(push)

    raw_examples = data.get("examples", [])
    if not isinstance(raw_examples, list):
        raise _fail(path, loc.line("examples"), "examples", "expected [[examples]] tables")
    examples: list[Example] = []
    for i, ex in enumerate(raw_examples):
        if not isinstance(ex, dict):
            raise _fail(path, loc.line("examples"), f"examples[{i}]", "expected a table")
        for key in ex:
            if key not in _EXAMPLE_KEYS:
                raise _fail(
                    path,
                    loc.line(key, "examples", i),
                    f"examples[{i}].{key}",
                    "unknown key (expected prompt, positive, negative)",
                )
        values = []
        for key in _EXAMPLE_KEYS:
            line = loc.line(key, "examples", i)
            if key not in ex:
                raise _fail(path, line, f"examples[{i}].{key}", "missing")
            values.append(_string(ex[key], path, line, f"examples[{i}].{key}"))
        examples.append(Example(*values))

    positive_texts = _string_list(
        data.get("positive_texts", []), path, loc.line("positive_texts"), "positive_texts"
    )
    negative_texts = _string_list(
        data.get("negative_texts", []), path, loc.line("negative_texts"), "negative_texts"
    )
    if not examples and not positive_texts:
        raise _fail(path, 1, "examples", "no data: give [[examples]] or positive_texts")

    questions: list[str] = []
    raw_questions = data.get("questions", [])
    if not isinstance(raw_questions, list):
        raise _fail(path, loc.line("questions"), "questions", "expected [[questions]] tables")
    for i, q in enumerate(raw_questions):
        if isinstance(q, str):
            questions.append(_string(q, path, loc.line("questions"), f"questions[{i}]"))
            continue
        line = loc.line("text", "questions", i)
        for key in q if isinstance(q, dict) else ():
            if key != "text":
                raise _fail(
                    path,
                    loc.line(key, "questions", i),
                    f"questions[{i}].{key}",
                    "unknown key (expected text)",
                )
        if not isinstance(q, dict) or "text" not in q:
            raise _fail(path, line, f"questions[{i}].text", "missing")
        questions.append(_string(q["text"], path, line, f"questions[{i}].text"))

    return Dimension(
        name=name,
        negative=negative,
        positive=positive,
        description=description,
        model=model,
        push=push,
        examples=examples,
        positive_texts=positive_texts,
        negative_texts=negative_texts,
        questions=questions,
        path=path,
        content_hash=content_hash(name, examples, positive_texts, negative_texts, push),
    )


def load_dimension(path: str | Path) -> Dimension:
    """Read one dimension file; raise `VectorError` naming file, line and field if malformed."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise VectorError(f"{path}: dimension file not found") from None
    except UnicodeDecodeError:
        raise _fail(path, 1, "(encoding)", "expected UTF-8 text") from None
    except IsADirectoryError:
        raise VectorError(f"{path}: is a folder, expected a dimension file (TOML)") from None
    except OSError as exc:
        raise VectorError(f"{path}: cannot read the dimension file ({exc.strerror})") from None
    return parse_dimension(text, path)


class DimensionLibrary:
    """The dimensions available for one model.

    Sources, later ones overriding earlier ones of the same name: the shipped `vectors/*.toml`
    (real chat models), the shipped `vectors/toy/*.toml` (the toy model), then the user's
    `<home>/vectors/*.toml`. Only datasets written for `model_id` are kept (`Dimension.model`).
    Files that fail to parse are skipped (a listing shows what it can) and reported by
    `errors`, for the caller to warn about: a broken file breaks only its own dimension, which
    `get()` refuses with the file's error.
    """

    def __init__(
        self,
        home: Home | None,
        model_id: str,
        shipped_dir: Path | None = None,
    ) -> None:
        self.home = home
        self.model_id = model_id
        self.shipped_dir = shipped_dir if shipped_dir is not None else repo_vectors_dir()
        self._dims: dict[str, Dimension] | None = None
        self.errors: list[VectorError] = []
        self._broken: dict[str, VectorError] = {}

    def sources(self) -> list[Path]:
        dirs = [self.shipped_dir, self.shipped_dir / "toy"]
        if self.home is not None:
            dirs.append(self.home.vectors_dir)
        return [d for d in dirs if d.is_dir()]

    def _load(self) -> dict[str, Dimension]:
        if self._dims is not None:
            return self._dims
        dims: dict[str, Dimension] = {}
        for folder in self.sources():
            for path in sorted(folder.glob("*.toml")):
                try:
                    check_name(path.stem, f"{path}: dimension file name")
                    dim = load_dimension(path)
                except VectorError as exc:
                    self.errors.append(exc)
                    self._broken[path.stem] = exc
                    continue
                if dim.applies_to(self.model_id):
                    dims[dim.name] = dim
        for dim in self._imported():
            dims.setdefault(dim.name, dim)
        self._dims = dims
        return dims

    def _imported(self) -> list[Dimension]:
        """Dimensions known only from a vector imported for this model (`vectors import
        --dimension NAME`): no examples, its poles from the vector file."""
        if self.home is None or not (self.home.vectors_dir / "built").is_dir():
            return []  # (and torch not imported: `steertui chat` checks --dims before it)
        from steertui.vectors.built import is_imported, list_built

        return [
            Dimension(
                name=b.meta.dimension,
                negative=b.meta.negative or "negative",
                positive=b.meta.positive or "positive",
                description=f"imported ({b.meta.source})",
                model=self.model_id,
                path=b.path,
            )
            for b in list_built(self.home, self.model_id)
            if is_imported(b.meta)
        ]

    def is_broken(self, name: str) -> bool:
        """Whether `name`'s own file is unreadable (`get(name)` raises its error)."""
        self._load()
        return name in self._broken

    def names(self) -> list[str]:
        return sorted(self._load())

    def all(self) -> list[Dimension]:
        dims = self._load()
        return [dims[n] for n in sorted(dims)]

    def __contains__(self, name: object) -> bool:
        return name in self._load()

    def get(self, name: str) -> Dimension:
        """The dimension `name`; its own file unreadable, that file's error (file, line and
        field). Another broken file does not stop it: `errors` holds those, to warn about."""
        dims = self._load()
        if name in self._broken:
            raise self._broken[name]
        if name in dims:
            return dims[name]
        available = ", ".join(sorted(dims)) or "none"
        raise VectorError(
            f"unknown dimension {name!r} for model {self.model_id!r} (available: {available})"
        )

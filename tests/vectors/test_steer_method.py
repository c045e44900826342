"""A vector file's recorded steering method (`VectorMeta.steer_method`)."""

from __future__ import annotations

import json
import struct

import pytest

from steertui.errors import VectorError
from steertui.vectors.file import SteeringVector, read_meta
from tests.vector_files import make_vector


def _rewrite_meta(path, change) -> None:
    """Edit the metadata JSON inside a saved file, as an older or a damaged writer left it."""
    data = path.read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + n])
    meta = json.loads(header["__metadata__"]["steertui"])
    change(meta)
    header["__metadata__"]["steertui"] = json.dumps(meta)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + n :])


def test_a_recorded_method_steers_the_files_specs(tmp_path):
    vec = make_vector()
    vec.meta.steer_method = "rotate"
    path = vec.save(tmp_path / "cost.safetensors")
    loaded = SteeringVector.load(path)
    assert {s.method for s in loaded.specs(0.5)} == {"rotate"}
    assert {s.method for s in loaded.specs(0.5, method="clamp")} == {"clamp"}


def test_a_file_from_before_the_field_reads_as_add(tmp_path):
    path = make_vector().save(tmp_path / "old.safetensors")
    _rewrite_meta(path, lambda m: m.pop("steer_method"))
    assert read_meta(path).steer_method == "add"
    assert {s.method for s in SteeringVector.load(path).specs(0.5)} == {"add"}


def test_an_unknown_method_in_a_file_is_one_line(tmp_path):
    path = make_vector().save(tmp_path / "bad.safetensors")
    _rewrite_meta(path, lambda m: m.update(steer_method="push"))
    with pytest.raises(VectorError, match="metadata field 'steer_method': expected one of add"):
        read_meta(path)

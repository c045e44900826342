"""A built vector is reused only on the weights it was built on.

The cache of built vectors is keyed by model name and dataset; a model retrained or updated
under the same name (`steertui toy train` writes the shipped toy in place, a hub model's new
revision) must not steer with directions found in the old weights.
"""

from __future__ import annotations

from pathlib import Path

import torch

from steertui.engine.fingerprint import weights_fingerprint
from steertui.home import Home
from steertui.vectors.build import get_or_build
from steertui.vectors.dimensions import DimensionLibrary
from steertui.vectors.file import SteeringVector, read_meta
from tests.tiny_models import tiny_engine, tiny_model


def test_fingerprint_follows_the_weights_not_their_dtype() -> None:
    model = tiny_model("llama", seed=0)
    same = weights_fingerprint(model)
    assert weights_fingerprint(tiny_model("llama", seed=0)) == same
    assert weights_fingerprint(tiny_model("llama", seed=1)) != same
    assert weights_fingerprint(
        tiny_model("llama", seed=0).to(torch.bfloat16)
    ) == weights_fingerprint(tiny_model("llama", seed=0).to(torch.bfloat16).float())
    with torch.no_grad():  # one weight nudged, as a few training steps would
        model.model.layers[1].mlp.down_proj.weight.mul_(1.01)
    assert weights_fingerprint(model) != same


def test_a_vector_built_on_other_weights_of_the_same_name_is_built_again(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    cost = DimensionLibrary(home, "tiny-llama").get("cost")
    first = tiny_engine("llama", seed=0)
    path = get_or_build(first, cost, "diffmean", home)
    assert read_meta(path).model_fingerprint == first.fingerprint
    before = SteeringVector.load(path)
    built_at = path.stat().st_mtime_ns
    assert get_or_build(tiny_engine("llama", seed=0), cost, "diffmean", home) == path
    assert path.stat().st_mtime_ns == built_at  # the same weights reuse the build

    retrained = tiny_engine("llama", seed=1)  # other weights, the same name
    after = SteeringVector.load(get_or_build(retrained, cost, "diffmean", home))
    assert after.meta.model_fingerprint == retrained.fingerprint != first.fingerprint
    layer = before.meta.recommended_layers[0]
    assert not torch.allclose(before.direction(layer), after.direction(layer), atol=1e-4)


def test_a_build_from_before_fingerprints_is_built_again(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    cost = DimensionLibrary(home, "tiny-llama").get("cost")
    engine = tiny_engine("llama", seed=0)
    path = get_or_build(engine, cost, "diffmean", home)
    vector = SteeringVector.load(path)
    vector.meta.model_fingerprint = ""  # as every file written before it was kept
    vector.save(path)
    assert read_meta(path).model_fingerprint == ""
    assert read_meta(get_or_build(engine, cost, "diffmean", home)).model_fingerprint == (
        engine.fingerprint
    )

"""The bundled toy model: its world, lexicon, tokenizer, shipped weights, datasets and trainer."""

from __future__ import annotations

import difflib
import json
import tomllib
from pathlib import Path

import pytest

from steertui.errors import ConfigError
from steertui.toy import (
    DIMENSIONS,
    card,
    load_lexicon,
    pole_counts,
    pole_score,
    pole_share,
    sample_requests,
    toy_model_path,
    world,
)
from steertui.toy.datasets import dataset_toml
from steertui.toy.world import words_of

REPO = Path(__file__).resolve().parents[2]
TOY_VECTORS = REPO / "vectors" / "toy"


# ----- world and lexicon ------------------------------------------------------------------


def test_lexicon_poles_are_disjoint_and_match_the_world() -> None:
    lex = load_lexicon()
    assert list(lex) == list(DIMENSIONS)
    seen: set[str] = set()
    for dim, entry in lex.items():
        for pole in ("negative", "positive"):
            words = set(entry[pole])
            assert len(words) >= 6, (dim, pole)
            assert not words & seen, f"{dim} {pole} reuses {words & seen}"
            seen |= words
    assert lex == json.loads(json.dumps(world.build_lexicon()))
    assert (lex["cost"]["negative_label"], lex["cost"]["positive_label"]) == ("budget", "luxury")


def test_every_answer_carries_each_pole_at_least_twice() -> None:
    for example in world.generate(300, seed=7):
        for dim in DIMENSIONS:
            neg, pos = pole_counts(example.answer, dim)
            mine, other = (pos, neg) if example.poles[dim] else (neg, pos)
            assert mine >= 2 and other == 0, (dim, example.answer)
            assert pole_counts(example.request, dim) == (0, 0), example.request
        # the place, then three sentences of mentions (plus "Here is an idea." as some leads)
        assert example.answer.count(".") in (4, 5)


def test_first_and_later_mentions_share_their_frames() -> None:
    """Where a dimension opens and where it repeats are the same kind of slot."""
    firsts: dict[str, set[str]] = {d: set() for d in DIMENSIONS}
    laters: dict[str, set[str]] = {d: set() for d in DIMENSIONS}
    rng = __import__("random").Random(0)
    for _ in range(300):
        skeleton = world.draw_skeleton(rng, rng.choice(world.CATEGORIES))
        seen: set[str] = set()
        for mention in (m for sentence in skeleton.sentences for m in sentence):
            (laters if mention.dim in seen else firsts)[mention.dim].add(mention.frame)
            seen.add(mention.dim)
    for dim in DIMENSIONS:
        assert firsts[dim] == laters[dim] == set(world.FRAMES[dim]), dim


def test_world_is_seeded_and_balanced() -> None:
    a = world.generate(400, seed=3)
    assert a == world.generate(400, seed=3)
    assert a != world.generate(400, seed=4)
    for dim in DIMENSIONS:
        assert 0.4 <= pole_share([e.answer for e in a], dim) <= 0.6


def test_a_mirrored_corpus_pairs_opposite_poles() -> None:
    examples = world.generate(400, seed=3, mirrored=True)
    assert examples == world.generate(400, seed=3, mirrored=True)
    for first, second in zip(examples[0::2], examples[1::2], strict=True):
        for dim in DIMENSIONS:
            assert first.poles[dim] != second.poles[dim]
            assert pole_score(first.answer, dim) == -pole_score(second.answer, dim) != 0
    assert len({e.request for e in examples}) > 300  # each row its own request and skeleton
    for dim in DIMENSIONS:
        assert 0.4 <= pole_share([e.answer for e in examples[0::2]], dim) <= 0.6


def test_training_batches_hold_both_poles_equally_and_similar_lengths() -> None:
    from steertui.toy.train import TrainConfig, _batches

    examples = world.generate(4000, seed=0, mirrored=True)
    lengths = [len(e.answer) for e in examples]
    batches = _batches(lengths, TrainConfig())
    seen: set[int] = set()
    spread = []
    for _ in range(4000 // 16):
        rows = next(batches)
        assert len(rows) == 16 and not seen & set(rows)  # an epoch uses each row once
        seen |= set(rows)
        for dim in DIMENSIONS:
            assert sum(examples[r].poles[dim] for r in rows) == 8, dim
        spread.append(max(lengths[r] for r in rows) - min(lengths[r] for r in rows))
    assert sum(spread) / len(spread) < 0.5 * (max(lengths) - min(lengths))


def test_pole_helpers_count_whole_words() -> None:
    text = "Try the cheap ramen bar, with AFFORDABLE prices; the ramen is cheapish."
    assert pole_counts(text, "cost") == (2, 0)
    assert pole_score(text, "cost") == -1
    assert pole_score(text, "culture") == -1
    assert pole_score("Cheap but luxury.", "cost") == 0
    assert pole_share(["cheap", "luxury", "lavish upscale", "nothing here"], "cost") == 2 / 3
    assert pole_share(["nothing here"], "cost") == 0.5
    with pytest.raises(ConfigError, match="price"):
        pole_score("cheap", "price")


def test_sample_requests_are_heldout_and_seeded() -> None:
    requests = sample_requests(40, seed=1)
    assert requests == sample_requests(40, seed=1) != sample_requests(40, seed=2)
    training = {e.request for e in world.generate(5000, seed=0)}
    assert not any(world_city in " ".join(requests) for world_city in world.CITIES)
    assert len(set(requests) - training) >= 10


# ----- shipped tokenizer and weights -------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(toy_model_path())


@pytest.fixture(scope="module")
def model():
    import torch
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(2)
    return AutoModelForCausalLM.from_pretrained(toy_model_path()).eval()


def test_tokenizer_round_trips_any_text(tokenizer) -> None:
    for text in [
        "Héllo wörld, ça va? 👋🏽 漢字 — ñ ø ß ∑ \t tabs\nand newlines",
        "<b>markup</b> [bold]rich[/bold] {{ jinja }}",
        "emoji only: 🍜🍔🌅🌙",
    ]:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert tokenizer.unk_token_id is None or tokenizer.unk_token_id not in ids
        assert tokenizer.decode(ids) == text


def test_tokenizer_has_a_chat_template_and_distinct_pad(tokenizer) -> None:
    assert tokenizer.eos_token == "<|end|>"
    assert tokenizer.pad_token_id is not None and tokenizer.pad_token_id != tokenizer.eos_token_id
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Any café?"}], add_generation_prompt=True, tokenize=False
    )
    assert text == "<|user|>\nAny café?<|end|>\n<|assistant|>\n"


def test_shipped_model_is_small_and_generates_a_finished_answer(model, tokenizer) -> None:
    import torch

    n_params = sum(p.numel() for p in model.parameters())
    assert 100_000 <= n_params <= 2_000_000
    assert sum(f.stat().st_size for f in toy_model_path().iterdir()) < 8 * 2**20
    assert model.generation_config.eos_token_id == tokenizer.eos_token_id
    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Where should I eat in Ghent?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    with torch.no_grad():
        out = model.generate(**ids, do_sample=False, max_new_tokens=96)
    new = out[0, ids["input_ids"].shape[1] :].tolist()
    assert new[-1] == tokenizer.eos_token_id
    answer = tokenizer.decode(new, skip_special_tokens=True)
    assert sum(pole_score(answer, d) != 0 for d in DIMENSIONS) >= 4, answer


@pytest.fixture(scope="module")
def unsteered() -> list[str]:
    from steertui.toy.sampling import sample_answers

    return sample_answers(64, seed=0)[1]


def test_unsteered_poles_are_balanced(unsteered: list[str]) -> None:
    for dim in DIMENSIONS:
        assert 0.3 <= pole_share(unsteered, dim) <= 0.7, (dim, pole_share(unsteered, dim))


def test_unsteered_answers_keep_each_pole_consistent(unsteered: list[str]) -> None:
    """The pole is a latent the model carries: an answer rarely mixes both poles of a dimension."""
    for dim in DIMENSIONS:
        mixed = sum(all(pole_counts(a, dim)) for a in unsteered) / len(unsteered)
        assert mixed <= 0.15, (dim, mixed)


def test_card_names_a_middle_layer(model) -> None:
    info = card()
    assert 0 < info["steer_layer"] < model.config.num_hidden_layers - 1
    assert info["coeff"] > 0


# ----- datasets ---------------------------------------------------------------------------


def _diff_words(a: str, b: str) -> tuple[list[str], list[str]]:
    wa, wb = a.split(), b.split()
    left: list[str] = []
    right: list[str] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=wa, b=wb).get_opcodes():
        if tag != "equal":
            left += wa[i1:i2]
            right += wb[j1:j2]
    return left, right


@pytest.mark.parametrize("dim", DIMENSIONS)
def test_dataset_pairs_differ_only_in_their_pole(dim: str) -> None:
    path = TOY_VECTORS / f"{dim}.toml"
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    lex = load_lexicon()[dim]
    assert (data["name"], data["model"]) == (dim, "toy")
    assert (data["negative"], data["positive"]) == (lex["negative_label"], lex["positive_label"])
    assert data["description"]
    assert len(data["examples"]) >= 50 and len(data["questions"]) == 3
    assert all(q["text"].strip() for q in data["questions"])
    for ex in data["examples"]:
        assert pole_score(ex["positive"], dim) == 1 and pole_score(ex["negative"], dim) == -1
        for other in DIMENSIONS:
            if other != dim:
                assert pole_counts(ex["positive"], other) == pole_counts(ex["negative"], other)
        pos_words, neg_words = _diff_words(ex["positive"], ex["negative"])
        assert pos_words and all(w in lex["positive"] for w in words_of(" ".join(pos_words)))
        assert neg_words and all(w in lex["negative"] for w in words_of(" ".join(neg_words)))
    assert path.read_text(encoding="utf-8") == dataset_toml(dim)  # `toy datasets` rewrites it


# ----- commands ---------------------------------------------------------------------------


def test_train_command_writes_a_loadable_model(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from typer.testing import CliRunner

    from steertui.cli import app

    out = tmp_path / "toy"
    result = CliRunner().invoke(
        app, ["toy", "train", "--out", str(out), "--steps", "3", "--corpus-size", "300"]
    )
    assert result.exit_code == 0, result.output
    assert str(out) in result.output
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "generation_config.json"} <= names
    assert {"tokenizer.json", "tokenizer_config.json", "training.json"} <= names
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left
    AutoModelForCausalLM.from_pretrained(out)
    assert AutoTokenizer.from_pretrained(out).eos_token == "<|end|>"


def test_sample_and_datasets_commands(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from steertui.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["toy", "sample", "--n", "2", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert result.output.count("> ") == 2 and "budget:" in result.output
    result = runner.invoke(app, ["toy", "datasets", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for dim in DIMENSIONS:
        shipped = (TOY_VECTORS / f"{dim}.toml").read_text(encoding="utf-8")
        assert (tmp_path / f"{dim}.toml").read_text(encoding="utf-8") == shipped


@pytest.mark.slow
@pytest.mark.timeout(1800)  # the whole recipe: under 3 minutes on 2 idle cores, more when busy
def test_training_reproduces_the_shipped_behaviour(tmp_path: Path) -> None:
    """Same seed, same recipe: the retrained model's pole shares match the shipped one's."""
    from steertui.toy.sampling import sample_answers
    from steertui.toy.train import TrainConfig, train

    recorded = json.loads((toy_model_path() / "training.json").read_text())["config"]
    train(tmp_path / "toy", TrainConfig(**recorded))
    shipped = sample_answers(64, seed=5)[1]
    retrained = sample_answers(64, seed=5, path=tmp_path / "toy")[1]
    for dim in DIMENSIONS:
        assert abs(pole_share(retrained, dim) - pole_share(shipped, dim)) <= 0.2, dim
        mixed = sum(all(pole_counts(a, dim)) for a in retrained) / len(retrained)
        assert mixed <= 0.15, (dim, mixed)

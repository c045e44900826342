"""Incremental detokenization: the same text as decoding the whole row, in linear work."""

from __future__ import annotations

import random
from functools import lru_cache
from typing import Any

import pytest

from steertui.engine import Engine
from steertui.engine.detok import Detokenizer
from tests.tiny_models import tiny_tokenizer

TEXTS = [
    "the quick brown fox jumps over the lazy dog",
    "  two leading spaces, then  double  spaces and a tab\there",
    "café, naïve, 日本語の文章, emoji 🙂🚀 and a flag 🇫🇷 in one line",
    "ß→∑ ∫ mixed: the fox 狐 jumps\nover two\n\nlines",
]


@lru_cache(maxsize=1)
def sentencepiece_tokenizer() -> Any:
    """A Llama-style tokenizer: SentencePiece `▁` spaces, the first one stripped on decode, and
    byte fallback for characters outside the vocabulary (so a character spans several tokens)."""
    from tokenizers import Tokenizer, decoders, models, normalizers
    from transformers import PreTrainedTokenizerFast

    pieces = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    words = ["▁the", "▁quick", "▁fox", "▁jumps", "▁over", "▁lazy", "▁dog", "▁", "the", "fox"]
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)] + list(",.:;!?'-")
    vocab = [(p, 0.0) for p in pieces] + [(w, -1.0) for w in words] + [(c, -5.0) for c in letters]
    model = models.Unigram(vocab, unk_id=0, byte_fallback=True)
    tok = Tokenizer(model)
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence(
        [
            decoders.Replace("▁", " "),
            decoders.ByteFallback(),
            decoders.Fuse(),
            decoders.Strip(" ", 1, 0),
        ]
    )
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>")


def old_stream(tokenizer: Any, ids: list[int]) -> str:
    """What the engine emitted before: the whole row re-decoded at each token."""
    emitted = ""
    for n in range(1, len(ids) + 1):
        text = tokenizer.decode(ids[:n], skip_special_tokens=True)
        if text.endswith("\ufffd") or not text.startswith(emitted):
            continue
        emitted = text
    return emitted


def stream(tokenizer: Any, ids: list[int]) -> list[str]:
    detok = Detokenizer(tokenizer, 1)
    return [detok.push([(0, tok)])[0] for tok in ids]


def encode(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


@pytest.mark.parametrize("make", [tiny_tokenizer, sentencepiece_tokenizer], ids=["bpe", "sp"])
@pytest.mark.parametrize("text", TEXTS)
def test_pieces_add_up_to_the_whole_text(make: Any, text: str) -> None:
    tokenizer = make()
    ids = encode(tokenizer, text)
    assert len(ids) > len(text.split())  # characters really are split across tokens
    pieces = stream(tokenizer, ids)
    whole = tokenizer.decode(ids, skip_special_tokens=True)
    assert "".join(pieces) == whole == old_stream(tokenizer, ids)
    assert not any("\ufffd" in p for p in pieces)  # a split character is held back, not mangled


def test_sentencepiece_keeps_each_word_s_leading_space() -> None:
    tokenizer = sentencepiece_tokenizer()
    pieces = [p for p in stream(tokenizer, encode(tokenizer, "the quick fox")) if p]
    assert pieces == ["the", " quick", " fox"]


def test_byte_fallback_emoji_comes_out_once_whole() -> None:
    tokenizer = sentencepiece_tokenizer()
    ids = encode(tokenizer, "fox 🙂")
    pieces = stream(tokenizer, ids)
    assert "🙂" in pieces or " 🙂" in pieces
    assert pieces[-4:-1] == ["", "", ""]  # four byte tokens, one character


def test_random_tokens_give_what_the_old_detokenizer_gave() -> None:
    """Random byte-level ids: invalid UTF-8, specials and all; same text as before."""
    tokenizer = tiny_tokenizer()
    rng = random.Random(0)
    for _ in range(20):
        ids = [rng.randrange(len(tokenizer)) for _ in range(60)]
        assert "".join(stream(tokenizer, ids)) == old_stream(tokenizer, ids)


class CountingTokenizer:
    """Counts how many tokens are handed to the tokenizer to decode."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.decoded = 0

    def batch_decode(self, seqs: list[list[int]], **kwargs: Any) -> list[str]:
        self.decoded += sum(len(s) for s in seqs)
        return list(self.inner.batch_decode(seqs, **kwargs))


def test_work_is_linear_in_the_length() -> None:
    tokenizer = tiny_tokenizer()
    ids = encode(tokenizer, " ".join(TEXTS) * 20)
    counting = CountingTokenizer(tokenizer)
    detok = Detokenizer(counting, 1)
    text = "".join(detok.push([(0, tok)])[0] for tok in ids)
    assert text == tokenizer.decode(ids)
    assert len(ids) > 1000
    assert counting.decoded < 8 * len(ids)  # re-decoding the row each token: ~len(ids)**2 / 2


def test_rows_of_a_batch_are_independent() -> None:
    tokenizer = sentencepiece_tokenizer()
    rows = [encode(tokenizer, t) for t in TEXTS]
    detok = Detokenizer(tokenizer, len(rows))
    got = [""] * len(rows)
    for n in range(max(len(r) for r in rows)):
        pairs = [(b, r[n]) for b, r in enumerate(rows) if n < len(r)]
        for (b, _), piece in zip(pairs, detok.push(pairs), strict=True):
            got[b] += piece
    assert got == [tokenizer.decode(r) for r in rows]


def test_smollm2_tokenizer_streams_the_same_text(smollm2_engine: Engine) -> None:
    tokenizer = smollm2_engine.tokenizer
    for text in TEXTS:
        ids = encode(tokenizer, text)
        assert "".join(stream(tokenizer, ids)) == tokenizer.decode(ids, skip_special_tokens=True)


@pytest.mark.parametrize("engine_name", ["toy_engine", "smollm2_engine"])
def test_generate_gives_the_text_stream_yields(engine_name: str, request: Any) -> None:
    """`generate` decodes each row once at the end; `stream` detokenizes token by token: the
    same seeded rows read the same either way."""
    from steertui.engine import SamplingParams

    engine: Engine = request.getfixturevalue(engine_name)
    prompts = ["Where should we eat tonight?", "Any museum worth a visit?", "Tell me a story."]
    params = SamplingParams(temperature=0.9, max_new_tokens=40, seed=7)
    streamed = [""] * len(prompts)
    for event in engine.stream(prompts, sampling=params):
        streamed[event.row] += event.text
    assert [r.text for r in engine.generate(prompts, sampling=params)] == streamed
    assert all(streamed)

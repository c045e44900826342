"""Chat prompts: a single-turn model (the toy, per its card) gets only the last exchange."""

from __future__ import annotations

import pytest

from steertui.engine import Engine, SamplingParams
from steertui.engine.chat import last_exchange
from steertui.toy import DIMENSIONS, card, pole_score

SYSTEM = {"role": "system", "content": "You are a concierge."}
FIRST = {"role": "user", "content": "Where should we eat tonight in Lyon?"}
SECOND = {"role": "user", "content": "Something for the kids in the morning instead?"}


def test_last_exchange_keeps_the_system_prompt_and_the_last_user_turn() -> None:
    said = {"role": "assistant", "content": "The bistro by the harbour."}
    assert last_exchange([SYSTEM, FIRST, said, SECOND]) == [SYSTEM, SECOND]
    assert last_exchange([FIRST]) == [FIRST]
    assert last_exchange([SYSTEM]) == [SYSTEM]


@pytest.fixture(scope="module")
def toy(toy_engine: Engine) -> Engine:
    return toy_engine


def test_toy_card_marks_it_single_turn(toy: Engine) -> None:
    assert card()["single_turn"] is True
    assert toy.loaded.single_turn


def test_a_second_turn_on_the_toy_is_well_formed_and_said_once(toy: Engine) -> None:
    """Turn two ends on its own (eos, within the card's budget) and carries a pole of at least
    four of the five dimensions, as a first turn does; the engine says once that it cut the
    history, through `take_notices`, not through `warnings`."""
    greedy = SamplingParams(temperature=0, max_new_tokens=card()["sampling"]["max_new_tokens"])
    toy.take_notices()
    first = toy.generate([[FIRST]], sampling=greedy)[0]
    assert toy.take_notices() == []  # one exchange: nothing cut, nothing said
    chat = [FIRST, {"role": "assistant", "content": first.text}, SECOND]
    second = toy.generate([chat], sampling=greedy)[0]
    assert second.finish_reason == "eos", second.text
    assert sum(pole_score(second.text, d) != 0 for d in DIMENSIONS) >= 4, second.text
    assert toy.chat_ids(chat) == toy.chat_ids([SECOND])
    notices = toy.take_notices()
    assert len(notices) == 1 and "single-turn" in notices[0]
    toy.generate([chat + [{"role": "assistant", "content": second.text}, FIRST]], sampling=greedy)
    assert toy.take_notices() == []  # said once per engine


def test_a_multi_turn_model_sees_the_whole_conversation() -> None:
    from tests.tiny_models import tiny_engine

    engine = tiny_engine("llama", seed=1)
    assert not engine.loaded.single_turn
    chat = [FIRST, {"role": "assistant", "content": "The bistro."}, SECOND]
    assert len(engine.chat_ids(chat)) > len(engine.chat_ids([SECOND]))
    assert engine.take_notices() == []

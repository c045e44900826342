"""Messages to token ids through the model's chat template, or plain lines when it has none."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

Message = Mapping[str, str]


def _ids_of(result: Any) -> list[int]:
    if isinstance(result, Mapping) or hasattr(result, "keys"):
        result = result["input_ids"]
    if hasattr(result, "tolist"):
        result = result.tolist()
    if result and isinstance(result[0], list):
        result = result[0]
    return [int(t) for t in result]


def _merge_system(messages: Sequence[Message]) -> list[dict[str, str]]:
    """For templates that reject a system turn: fold it into the first user message."""
    system = [m["content"] for m in messages if m["role"] == "system"]
    rest = [dict(m) for m in messages if m["role"] != "system"]
    if system and rest and rest[0]["role"] == "user":
        rest[0]["content"] = "\n\n".join(system) + "\n\n" + rest[0]["content"]
    return rest


def last_exchange(messages: Sequence[Message]) -> list[Message]:
    """For a single-turn model: the system messages and the conversation from the last user
    message on (the earlier turns dropped)."""
    last_user = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=None)
    if last_user is None:
        return list(messages)
    head = [m for m in messages[:last_user] if m["role"] == "system"]
    return head + list(messages[last_user:])


def plain_prompt(messages: Sequence[Message], add_generation_prompt: bool = True) -> str:
    lines = [f"{m['role']}: {m['content']}" for m in messages]
    if add_generation_prompt:
        lines.append("assistant:")
    return "\n".join(lines)


def chat_token_ids(
    tokenizer: Any,
    messages: Sequence[Message],
    add_generation_prompt: bool = True,
    single_turn: bool = False,
) -> list[int]:
    """Token ids of a conversation; a `single_turn` model gets only its `last_exchange`."""
    for m in messages:
        if "role" not in m or "content" not in m:
            raise ValueError("each chat message needs a 'role' and a 'content'")
    if single_turn:
        messages = last_exchange(messages)
    if getattr(tokenizer, "chat_template", None):
        try:
            out = tokenizer.apply_chat_template(
                list(messages), add_generation_prompt=add_generation_prompt, tokenize=True
            )
        except Exception:  # templates raise arbitrary errors (e.g. "system role not supported")
            out = tokenizer.apply_chat_template(
                _merge_system(messages), add_generation_prompt=add_generation_prompt, tokenize=True
            )
        return _ids_of(out)
    return _ids_of(tokenizer(plain_prompt(messages, add_generation_prompt)))

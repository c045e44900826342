"""Sample answers from a toy model with plain transformers (no engine, no steering): what
`steertui toy sample` prints and what the toy's own tests measure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from steertui.toy.tokenizer import END, prompt_text


def sample_answers(
    n: int,
    seed: int = 0,
    path: Path | None = None,
    temperature: float = 1.0,
    max_new_tokens: int = 96,
    requests: list[str] | None = None,
    loaded: tuple[Any, Any] | None = None,
) -> tuple[list[str], list[str]]:
    """(requests, answers) for `n` held-out requests, sampled in one batch, seeded.

    `loaded`: the (model, tokenizer) the caller loaded; `steertui toy sample` loads them with
    the engine's loader, so a broken folder is the same one line as for `generate` (the toy
    package may not import the engine)."""
    import torch

    from steertui.toy import sample_requests

    if loaded is not None:
        model, tokenizer = loaded
    else:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        folder = check_folder(path)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        tokenizer.padding_side = "left"
        model = AutoModelForCausalLM.from_pretrained(folder).eval()
    requests = requests if requests is not None else sample_requests(n, seed)
    batch = tokenizer(
        [prompt_text(r) for r in requests],
        return_tensors="pt",
        padding=True,
        add_special_tokens=False,
    )
    end_id = tokenizer.convert_tokens_to_ids(END)
    torch.manual_seed(seed)
    with torch.no_grad():
        out = model.generate(
            **batch,
            do_sample=temperature > 0,
            temperature=temperature if temperature > 0 else None,
            top_p=1.0,
            top_k=0,
            max_new_tokens=max_new_tokens,
            eos_token_id=end_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    answers = tokenizer.batch_decode(
        out[:, batch["input_ids"].shape[1] :], skip_special_tokens=True
    )
    return requests, [a.strip() for a in answers]


def check_folder(path: Path | None) -> Path:
    """The toy model folder (default: the shipped one), refused in one line without a config."""
    from steertui.toy import toy_model_path

    folder = Path(path) if path is not None else toy_model_path()
    if not (folder / "config.json").is_file():
        from steertui.errors import EngineError

        raise EngineError(
            f"toy model folder {folder} has no config.json: expected a model that "
            "`steertui toy train` wrote"
        )
    return folder

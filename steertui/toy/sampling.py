"""Sample answers from a toy model with plain transformers (no engine, no steering): what
`steertui toy sample` prints and what the toy's own tests measure."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from steertui.toy.tokenizer import END, prompt_text


def sample_answers(
    n: int,
    seed: int = 0,
    path: Path | None = None,
    temperature: float = 1.0,
    max_new_tokens: int = 96,
    requests: list[str] | None = None,
) -> tuple[list[str], list[str]]:
    """(requests, answers) for `n` held-out requests, sampled in one batch, seeded."""
    import torch

    from steertui.engine.loading import load_model
    from steertui.toy import sample_requests, toy_model_path

    folder = Path(path) if path is not None else toy_model_path()
    if not (folder / "config.json").is_file():
        from steertui.errors import EngineError

        raise EngineError(
            f"toy model folder {folder} has no config.json: expected a model that "
            "`steertui toy train` wrote"
        )
    # The engine's loader, as `generate` uses it: every broken folder is the same one line.
    loaded = load_model(str(folder), device="cpu", dtype="float32")
    tokenizer, model = loaded.tokenizer, cast(Any, loaded.model)
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

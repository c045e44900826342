"""`steertui toy ...`: train the bundled toy model, sample from it, rewrite its datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from steertui.commands.common import integer_check, number_check
from steertui.safe_text import visible
from steertui.validation import SEED_MAX

app = typer.Typer(no_args_is_help=True)

OutOpt = Annotated[
    Path | None,
    typer.Option("--out", help="Destination folder (default: the shipped one in the package)."),
]


@app.command("train", help="Train the toy model from scratch (deterministic from --seed).")
def train_command(
    out: OutOpt = None,
    seed: Annotated[
        int,
        typer.Option(
            "--seed", help="Seed of the corpus and weights.", callback=integer_check(0, SEED_MAX)
        ),
    ] = 0,
    steps: Annotated[
        int,
        typer.Option(
            "--steps", callback=integer_check(0, 10**7), help="Optimizer steps (0: default)."
        ),
    ] = 0,
    threads: Annotated[
        int,
        typer.Option("--threads", callback=integer_check(1, 1024), help="CPU threads for torch."),
    ] = 2,
    corpus_size: Annotated[
        int,
        typer.Option(
            "--corpus-size",
            callback=integer_check(0, 10**8),
            help="Conversations in the corpus (0: default).",
        ),
    ] = 0,
) -> None:
    from dataclasses import replace

    from steertui.home import require_writable
    from steertui.toy import toy_model_path
    from steertui.toy.train import TrainConfig, train

    cfg = TrainConfig(seed=seed, threads=threads)
    if steps:
        cfg = replace(cfg, steps=steps)
    if corpus_size:
        cfg = replace(cfg, corpus_size=corpus_size)
    dest = out if out is not None else toy_model_path()
    require_writable(Path(dest), "the toy model folder")  # before minutes of training
    every = max(1, cfg.steps // 20)

    def progress(step: int, loss: float) -> None:
        if step % every == 0 or step == cfg.steps - 1:
            typer.echo(f"step {step + 1}/{cfg.steps}  loss {loss:.3f}")

    report = train(dest, cfg, progress)
    typer.echo(
        f"trained {report.n_params:,} parameters in {report.seconds:.0f} s, "
        f"final loss {report.final_loss:.3f}; wrote {dest}"
    )


@app.command("sample", help="Print a few sampled answers with their pole tallies.")
def sample_command(
    n: Annotated[
        int, typer.Option("--n", callback=integer_check(1, 10_000), help="How many answers.")
    ] = 4,
    seed: Annotated[
        int,
        typer.Option(
            "--seed", help="Seed of the requests and sampling.", callback=integer_check(0, SEED_MAX)
        ),
    ] = 0,
    model: Annotated[
        Path | None, typer.Option("--model", help="A toy model folder (default: the shipped one).")
    ] = None,
    temperature: Annotated[float, typer.Option("--temperature", callback=number_check(0.0))] = 1.0,
) -> None:
    from steertui.engine.loading import load_model
    from steertui.toy import DIMENSIONS, load_lexicon, pole_counts, pole_share
    from steertui.toy.sampling import check_folder, sample_answers

    # the engine's loader, as `generate` uses it: a broken folder is the same one line
    toy = load_model(str(check_folder(model)), device="cpu", dtype="float32")
    requests, answers = sample_answers(
        n, seed=seed, temperature=temperature, loaded=(toy.model, toy.tokenizer)
    )
    lex = load_lexicon()
    for request, answer in zip(requests, answers, strict=True):
        typer.echo(visible(f"> {request}\n{answer}"))
        tallies = []
        for dim in DIMENSIONS:
            neg, pos = pole_counts(answer, dim)
            tallies.append(
                f"{dim} {lex[dim]['negative_label']}:{neg} {lex[dim]['positive_label']}:{pos}"
            )
        typer.echo("  " + " | ".join(tallies) + "\n")
    shares = ", ".join(
        f"{dim} {lex[dim]['positive_label']} {pole_share(answers, dim):.0%}" for dim in DIMENSIONS
    )
    typer.echo(f"positive-pole shares over {n}: {shares}")


@app.command("datasets", help="Rewrite the toy's contrastive datasets (vectors/toy/*.toml).")
def datasets_command(
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Destination folder (default: the repository's vectors/toy)."),
    ] = None,
    n: Annotated[
        int, typer.Option("--n", callback=integer_check(1, 100_000), help="Examples per dimension.")
    ] = 64,
    seed: Annotated[
        int,
        typer.Option("--seed", help="Seed of the examples.", callback=integer_check(0, SEED_MAX)),
    ] = 0,
) -> None:
    from steertui.home import repo_vectors_dir, require_writable
    from steertui.toy.datasets import write_datasets

    dest = out if out is not None else repo_vectors_dir() / "toy"
    require_writable(dest, "the datasets folder")
    for path in write_datasets(dest, n_examples=n, seed=seed):
        typer.echo(f"wrote {path}")

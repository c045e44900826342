"""On the trained toy model: the seeded search lifts a held-out luxury task to >= 0.9, and the
AutoSteer README's two examples run with `from steertui import ...` (toy prompts swapped in)."""

from __future__ import annotations

from pathlib import Path

import pytest

from steertui.toy import toy_model_path

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(
    not (toy_model_path() / "config.json").exists(), reason="the toy model is not trained yet"
)


def test_example_config_lifts_luxury_share_to_0_9_within_30_iterations(
    tmp_path, monkeypatch, capsys
):
    from steertui.store import Store
    from tests.cli_runner import in_process

    monkeypatch.chdir(tmp_path)
    config = ROOT / "examples" / "search_toy_luxury.toml"
    code, _, err = in_process(
        monkeypatch, capsys, "search", "--config", str(config), "--home", str(tmp_path)
    )
    assert code == 0, err
    with Store.open(tmp_path / "sessions" / "steertui.db") as store:
        run = store.get_run(1)
        trials = store.trials(1)
    assert run.baseline_score is not None and run.baseline_score < 0.9
    assert run.best_score is not None and run.best_score >= 0.9
    first = next(t.iteration for t in trials if t.status == "keep" and t.score >= 0.9)
    assert first <= 30
    assert (tmp_path / "toy_luxury.tsv").read_text().count("\n") == len(trials) + 1


def test_autosteer_readme_examples_run_on_the_toy(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from steertui import AutoSteerRunner, CosineSchedule, DecaySchedule, Steer, SteerSearchSpace

    model = AutoModelForCausalLM.from_pretrained(toy_model_path())
    tokenizer = AutoTokenizer.from_pretrained(toy_model_path())

    # Manual steering
    steered = Steer(model, tokenizer)
    steered.add(layer_idx=2, coeff=0.4, text="luxury upscale")
    steered.add(layer_idx=2, coeff=-0.4, text="cheap budget")
    inputs = tokenizer("Hi! What is worth doing in town?", return_tensors="pt")
    output = model.generate(inputs["input_ids"], max_new_tokens=16, do_sample=False)
    assert isinstance(tokenizer.decode(output[0], skip_special_tokens=True), str)
    assert len(steered.get_all()) == 2
    steered.reset_all()
    assert steered.get_all() == []

    # Schedules
    steered = Steer(model, tokenizer)
    steered.add(
        layer_idx=2,
        coeff=0.5,
        text="luxury",
        coeff_schedule=DecaySchedule(rate=0.95, min_multiplier=0.1),
    )
    steered.add(
        layer_idx=1,
        coeff=0.3,
        text="upscale",
        coeff_schedule=CosineSchedule(period=40, min_multiplier=0.05),
    )
    steered.reset_all()

    # Autonomous search
    prompts = [
        "Hi! What is worth doing in town?",
        "Hello, where can we spend the nights around here?",
        "Hey, where should we eat tonight?",
    ]
    expected = ["luxury", "upscale", "lavish"]
    space = SteerSearchSpace(
        layer_range=(1, 3),
        coeff_range=(0.05, 1.0),
        texts=["luxury", "upscale", "lavish"],
        negative_texts=["cheap", "budget", "thrifty"],
    )
    runner = AutoSteerRunner(
        model=model,
        tokenizer=tokenizer,
        prompts=prompts,
        metric="task_accuracy",
        expected_outputs=expected,
        lower_is_better=False,
        search_space=space,
        log_path=str(tmp_path / "results.tsv"),
        seed=42,
        max_new_tokens=16,
    )
    results = runner.run(max_iterations=8)
    print(f"Baseline: {results['baseline_score']:.4f} → Best: {results['best_score']:.4f}")
    print(f"Best config: {results['best_candidate']}")
    assert results["best_score"] >= results["baseline_score"]
    assert [h["iteration"] for h in results["history"]] == list(range(1, 9))
    assert len((tmp_path / "results.tsv").read_text().splitlines()) == 1 + 1 + 8

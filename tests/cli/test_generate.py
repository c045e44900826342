"""`steertui generate` and `steertui doctor` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.tiny_models import tiny_model, tiny_tokenizer


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-qwen2")
    tiny_model("qwen2").save_pretrained(path)
    tiny_tokenizer().save_pretrained(path)
    return path


def _cli(*args: str, home) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "steertui", *args, "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_generate_json_gives_one_object_per_sample(tiny_dir, tmp_path):
    res = _cli(
        "generate",
        "-m",
        str(tiny_dir),
        "-p",
        "hello",
        "--n",
        "3",
        "--json",
        "--seed",
        "5",
        "--max-new-tokens",
        "4",
        home=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    records = [json.loads(line) for line in res.stdout.splitlines()]
    assert [r["sample"] for r in records] == [0, 1, 2]
    assert [r["sampling"]["seed"] for r in records] == [5, 6, 7]
    assert all(1 <= r["n_tokens"] <= 4 for r in records)
    again = _cli(
        "generate",
        "-m",
        str(tiny_dir),
        "-p",
        "hello",
        "--n",
        "3",
        "--json",
        "--seed",
        "5",
        "--max-new-tokens",
        "4",
        home=tmp_path,
    )
    assert [json.loads(line)["text"] for line in again.stdout.splitlines()] == [
        r["text"] for r in records
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--steer", "cost"], "is not DIM=VALUE"),
        (["--steer", "cost=250"], "expected a number between -100 and 100"),
        (["--vector", "nofile"], "is not FILE:LAYER:COEFF"),
        (["--positions", "middle"], "expected all or generated"),
    ],
)
def test_generate_bad_input_is_one_line_and_exit_2(tiny_dir, tmp_path, args, message):
    res = _cli("generate", "-m", str(tiny_dir), "-p", "hi", *args, home=tmp_path)
    assert res.returncode == 2
    assert message in res.stderr
    assert "Traceback" not in res.stderr


def test_generate_refuses_a_vector_file_that_is_not_there(tiny_dir, tmp_path):
    res = _cli(
        "generate",
        "-m",
        str(tiny_dir),
        "-p",
        "hi",
        "--vector",
        f"{tmp_path}/missing.safetensors:1:0.5",
        home=tmp_path,
    )
    assert res.returncode == 2
    assert "missing.safetensors" in res.stderr and "Traceback" not in res.stderr


def test_doctor_reports_device_home_and_database(tmp_path):
    res = _cli("doctor", "--json", home=tmp_path)
    assert res.returncode == 0, res.stderr
    facts = json.loads(res.stdout)
    assert facts["device"] == "cpu" and facts["dtype"] == "float32"
    assert facts["home"] == str(tmp_path.resolve())
    assert facts["database"].endswith("sessions/steertui.db")
    assert facts["versions"]["torch"].startswith("2.")

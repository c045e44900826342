"""`steertui serve --model smollm2` through the openai client: a plain and a steered answer."""

from __future__ import annotations

import pytest

from steertui.engine import SamplingParams
from tests.serve.server_process import start_server, stop_server

openai = pytest.importorskip("openai")


@pytest.mark.slow
def test_smollm2_answers_plain_and_steered(smollm2):
    engine = smollm2.engine  # dequantizes SmolLM2 into the run's home: the server reads it
    srv = start_server(smollm2.home.root, "--model", "smollm2")
    try:
        client = openai.OpenAI(base_url=srv.base, api_key="unused", max_retries=0, timeout=300)
        question = "Where should I go for dinner tonight?"

        def ask(steering: dict | None) -> str:
            out = client.chat.completions.create(
                model="smollm2",
                messages=[{"role": "user", "content": question}],
                temperature=0,
                max_tokens=24,
                extra_body={"steering": steering} if steering else None,
            )
            return out.choices[0].message.content or ""

        plain = ask(None)
        alone = engine.generate(
            [question], sampling=SamplingParams(temperature=0, max_new_tokens=24)
        )
        assert plain == alone[0].text
        steered = ask(
            {"vectors": [{"layer": 15, "coeff": 0.6, "text": "a luxurious five-star restaurant"}]}
        )
        assert steered and steered != plain
    finally:
        stop_server(srv.process)

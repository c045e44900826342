"""Key-press-to-screen latency of the app while an answer streams at full speed.

A knob is focused and `right` pressed N times while the engine streams as fast as it can;
the latency of one press is the time from sending the key to the knob rendering its new
value (what the next screen refresh shows). Prints p50 and p99 (the aim: p99 under 50 ms), and
how busy the app's event loop was (its thread's CPU time over the wall time): on a loaded
machine the wall-clock latencies swell, the CPU share says what the app itself spends.

    python bench/bench_tui_latency.py            # fake engine at 1000 tokens/s
    python bench/bench_tui_latency.py --toy      # the real engine on the bundled toy model
                                                 # (past its end token: its answers are short)
    python bench/bench_tui_latency.py --gap-ms 200   # presses 200 ms apart (default 20: a key
                                                     # held down)
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from textual import events  # noqa: E402

from steertui.home import Home  # noqa: E402
from steertui.tui.app import SteerApp, create_app  # noqa: E402
from steertui.tui.widgets.knob import Knob  # noqa: E402
from tests.tui.fake_engine import FakeEngine, FakeProvider  # noqa: E402

PARAGRAPH = " ".join(["The **tasting menu** pairs well with a *quiet* table."] * 4)
LONG_ANSWER = "\n\n".join([PARAGRAPH] * 300)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def measure(
    app: SteerApp, presses: int, gap: float = 0.02
) -> tuple[list[float], int, float, float]:
    rendered: dict[float, float] = {}
    async with app.run_test(size=(120, 40)) as pilot:
        main = app.main
        while app.model.state != "ready" or not all(
            d in main.steering.vectors for d in main.steering.active
        ):
            await pilot.pause(0.05)
        found = main.knob_panel.knob(main.steering.active[0])
        assert found is not None
        knob: Knob = found
        original = knob.render

        def render() -> Any:
            rendered.setdefault(knob.value, time.perf_counter())
            return original()

        knob.render = render  # type: ignore[method-assign]
        main.chat_panel.prompt.value = "Tell me about dinner options, at length."
        main.chat_panel.prompt.focus()
        await pilot.press("enter")
        while main.chat_panel.generation is None or main.chat_panel.generation.tokens < 5:
            await asyncio.sleep(0.001)
        knob.focus()
        await asyncio.sleep(0.05)
        start_tokens, start = main.chat_panel.generation.tokens, time.perf_counter()
        cpu = time.thread_time()
        latencies: list[float] = []
        for i in range(presses):
            if main.chat_panel.generation is None:
                break
            knob.value = -100.0 if i % 2 == 0 else knob.value
            await asyncio.sleep(gap)
            target = knob.value + 5.0
            sent = time.perf_counter()
            app.post_message(events.Key("right", None))
            while target not in rendered and time.perf_counter() - sent < 2.0:
                await asyncio.sleep(0.0005)
            if target not in rendered:  # the answer ended and the focus moved off the knob
                break
            latencies.append(rendered[target] - sent)
            rendered.clear()
        elapsed = time.perf_counter() - start
        cpu = time.thread_time() - cpu
        tokens = (
            main.chat_panel.generation.tokens if main.chat_panel.generation else start_tokens
        ) - start_tokens
        await main.action_stop()
    return latencies, tokens, elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--toy", action="store_true", help="real engine on the toy model")
    parser.add_argument("--presses", type=int, default=60)
    parser.add_argument(
        "--gap-ms",
        type=float,
        default=20.0,
        help="pause between a press showing and the next press (20: a key held down)",
    )
    parser.add_argument(
        "--token-ms", type=float, default=1.0, help="fake engine: ms per token (1.0 = 1000 tok/s)"
    )
    args = parser.parse_args()
    home = Home.resolve(tempfile.mkdtemp(prefix="steertui-bench-")).ensure()
    if args.toy:
        from steertui.engine import SamplingParams

        app = create_app(
            model="toy",
            home=home,
            dims="cost",
            device="cpu",
            sampling=SamplingParams(temperature=0.7, max_new_tokens=2000, seed=0, ignore_eos=True),
        )
        label = "toy model, real engine"
    else:
        engine = FakeEngine(scripts=(LONG_ANSWER, LONG_ANSWER), delay=args.token_ms / 1000)
        app = create_app(
            model="fake", home=home, engine_factory=lambda model: engine, provider=FakeProvider()
        )
        label = f"fake engine, {args.token_ms} ms per token"
    latencies, tokens, elapsed, cpu = asyncio.run(measure(app, args.presses, args.gap_ms / 1000))
    if not latencies:
        print("the answer ended before any key was measured; raise max_new_tokens")
        return
    ms = [x * 1000 for x in latencies]
    print(f"key-press-to-screen latency while streaming ({label})")
    print(f"  presses measured : {len(ms)}")
    print(f"  stream rate      : {tokens / elapsed:.0f} tokens/s during the measurement")
    print(f"  p50              : {statistics.median(ms):.1f} ms")
    print(f"  p99              : {percentile(ms, 99):.1f} ms")
    print(f"  max              : {max(ms):.1f} ms")
    print(f"  event loop busy  : {cpu / elapsed:.0%} of the wall time ({cpu:.2f} s CPU)")


if __name__ == "__main__":
    main()

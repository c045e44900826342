"""First use of the knobs on a fresh home, as the app does it: how long until the knob a user
touches steers, and until every dimension is calibrated.

The app's own vector provider (`tui.services.LibraryProvider`) is driven the way the chat
screen drives it: the knob is touched as soon as the model is ready, vectors are built in the
provider's order (touched first), each knob steers as soon as its vector is built (on the
provisional range) and the background calibration measures every range in shared batched
passes, the touched dimension first.

    nice -n 10 python bench/bench_first_use.py --model smollm2 --touch cost \\
        [--dims cost,age,tone] [--models-from ~/.local/share/steertui]

The home is fresh (a temporary folder); `--models-from HOME` links that home's `models/` in,
so a GGUF's one-time dequantizing (model loading, not first use of the knobs) is not timed.
Each line gives the wall time and the process's CPU time (all threads) since the touch, with
the load average. Run it on an idle machine: on a busy one torch's threads spin while they wait
for a core, so the CPU time swells with the load (a SmolLM2 forward cost 2.4 CPU-seconds on one
thread and 7 on two at load 6) and says nothing about an idle machine either.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--touch", default="cost", help="the knob touched first")
    ap.add_argument("--dims", default="", help="comma-separated (default: all shipped ones)")
    ap.add_argument("--models-from", default=None, help="a home whose models/ to link in")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    from steertui.engine import Engine, load_model
    from steertui.home import Home
    from steertui.tui.services import LibraryProvider

    root = Path(tempfile.mkdtemp(prefix="steertui-first-use-"))
    home = Home(root)
    home.ensure()
    if args.models_from:
        (root / "models").symlink_to(Path(args.models_from).expanduser().resolve() / "models")
    t_load = time.perf_counter()
    engine = Engine(load_model(args.model, device=args.device, dtype="float32", home=home))
    print(
        f"model {engine.model_id} loaded in {time.perf_counter() - t_load:.0f} s; {machine(args.device)}"
    )
    print(f"fresh home {root}")
    provider = LibraryProvider(home, str(engine.model_id))
    names = [d for d in args.dims.split(",") if d] or [d.name for d in provider.dimensions()]
    t0, c0 = time.perf_counter(), time.process_time()

    def stamp() -> str:
        return (
            f"{time.perf_counter() - t0:6.0f} s  (cpu {time.process_time() - c0:5.0f} s, "
            f"load {os.getloadavg()[0]:.1f})"
        )

    steers: dict[str, float] = {}
    calibrated: dict[str, float] = {}
    lock = threading.Lock()

    def progress_of(name: str):  # noqa: ANN202
        def progress(fraction: float, text: str) -> None:
            if name in steers and text == "" and name not in calibrated:
                with lock:
                    calibrated[name] = time.perf_counter() - t0
                print(f"  {stamp()}  {name} calibrated", flush=True)

        return progress

    provider.touched(args.touch)  # touched as soon as the model is ready
    pending = list(names)
    while pending:
        name = provider.order(pending)[0]
        pending.remove(name)
        provider.vector(engine, name, progress_of(name))
        steers[name] = time.perf_counter() - t0
        label = provider.range_status(name) or "(calibrated)"
        print(f"  {stamp()}  {name} steers {label}", flush=True)
    provider.wait_calibrated()
    total = time.perf_counter() - t0
    for name in names:  # any the listener missed (calibrated before it was registered)
        calibrated.setdefault(name, total)
    print(f"  {stamp()}  done")
    print()
    print(
        f"touched knob ({args.touch}) steers after {steers[args.touch]:.0f} s "
        f"(provisional range), calibrated after {calibrated[args.touch]:.0f} s"
    )
    print(
        f"all {len(names)} knobs steer after {max(steers.values()):.0f} s; "
        f"all calibrated after {max(calibrated.values()):.0f} s"
    )


if __name__ == "__main__":
    main()

"""Write a model's config.json and tokenizer to a folder, without its weights.

    python bench/shape_of.py smollm2 .gpu/smollm2-135m

`--model random:FOLDER` in the benchmarks then builds a model of that shape with random weights
and the real tokenizer: how a GPU machine that cannot hold the weights (the device tool carries
64 MiB) measures the speed of a model's shape, which does not depend on what the weights learned.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[2].strip())
    from steertui.engine import load_model

    loaded = load_model(sys.argv[1], device="cpu")
    out = Path(sys.argv[2])
    loaded.tokenizer.save_pretrained(out)
    config: Any = loaded.model.config
    config.save_pretrained(out)
    print(f"{out}: config and tokenizer of {loaded.model_id}")


if __name__ == "__main__":
    main()

"""`steertui doctor`: what this machine and install look like, without loading a model, and
the sampling a model gets by default (from its config files only) with where each value came
from."""

from __future__ import annotations

import json
import os
import platform
from importlib import metadata
from typing import Annotated, Any

import typer

from steertui.commands.common import DeviceOpt, DtypeOpt, HomeOpt, ModelOpt

PACKAGES = (
    "steertui",
    "torch",
    "transformers",
    "accelerate",
    "textual",
    "rich",
    "typer",
    "safetensors",
    "gguf",
)


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def model_sampling(model: str) -> dict[str, Any]:
    """The sampling `model` gets by default and each value's source, read from its
    generation_config.json alone (no weights); a model that cannot be found says so."""
    from steertui.engine.sampling_defaults import FIELDS, read_generation_config, sampling_defaults
    from steertui.errors import SteertuiError
    from steertui.hub import is_gguf_file, model_id_for, resolve_model_name

    try:
        model_id = model_id_for(model)
        source = resolve_model_name(model)
    except SteertuiError as exc:
        return {"model": model, "error": str(exc)}
    config: Any = None
    if os.path.isdir(source):
        config = read_generation_config(source)
    elif not is_gguf_file(source):  # a hub id: its cached generation_config.json, if any
        try:
            from transformers import GenerationConfig

            config = GenerationConfig.from_pretrained(source, local_files_only=True)
        except (OSError, ValueError):
            config = None
    defaults = sampling_defaults(model_id, config)
    return {
        "model": model_id,
        "generation_config": config is not None,
        "values": {name: defaults.values[name] for name in FIELDS},
        "sources": {name: defaults.source(name) for name in FIELDS},
        "lines": defaults.describe(),
    }


def gather(home: str | None, device: str, dtype: str) -> dict[str, Any]:
    import torch

    from steertui.engine.loading import resolve_device, resolve_dtype
    from steertui.home import Home

    facts: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {name: _version(name) for name in PACKAGES},
    }
    dev = resolve_device(device)
    facts["device"] = str(dev)
    facts["dtype"] = str(resolve_dtype(dtype, dev)).replace("torch.", "")
    facts["cpu_threads"] = torch.get_num_threads()
    if torch.cuda.is_available():
        gpus = []
        for i in range(torch.cuda.device_count()):
            free, total = torch.cuda.mem_get_info(i)
            gpus.append(
                {
                    "name": torch.cuda.get_device_name(i),
                    "memory_total_gib": round(total / 2**30, 1),
                    "memory_free_gib": round(free / 2**30, 1),
                    "bf16": torch.cuda.is_bf16_supported(),
                }
            )
        facts["cuda"] = {"version": torch.version.cuda, "gpus": gpus}
    else:
        facts["cuda"] = None
    mps = getattr(torch.backends, "mps", None)
    facts["mps"] = bool(mps is not None and mps.is_available())
    try:
        import psutil

        mem = psutil.virtual_memory()
        facts["memory_total_gib"] = round(mem.total / 2**30, 1)
        facts["memory_available_gib"] = round(mem.available / 2**30, 1)
    except ImportError:
        pass
    resolved = Home.resolve(home)
    facts["home"] = str(resolved.root)
    facts["home_source"] = (
        "--home" if home else ("STEERTUI_HOME" if os.environ.get("STEERTUI_HOME") else "default")
    )
    facts["database"] = str(resolved.db_path)
    facts["database_exists"] = resolved.db_path.exists()
    facts["hub_offline"] = os.environ.get("HF_HUB_OFFLINE", "") in ("1", "true", "True")
    return facts


def command(
    home: HomeOpt = None,
    model: ModelOpt = "toy",
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print the facts as JSON.")] = False,
) -> None:
    facts = gather(home, device, dtype)
    facts["sampling"] = model_sampling(model)
    if as_json:
        typer.echo(json.dumps(facts, indent=2))
        return
    typer.echo(f"python        {facts['python']} on {facts['platform']}")
    for name, version in facts["versions"].items():
        typer.echo(f"{name:<13} {version}")
    typer.echo(
        f"device        {facts['device']} (dtype {facts['dtype']}, {facts['cpu_threads']} CPU threads)"
    )
    if facts["cuda"]:
        for i, gpu in enumerate(facts["cuda"]["gpus"]):
            typer.echo(
                f"gpu {i}         {gpu['name']}: {gpu['memory_free_gib']} of {gpu['memory_total_gib']} GiB free, "
                f"bf16 {'yes' if gpu['bf16'] else 'no'}"
            )
    if "memory_total_gib" in facts:
        typer.echo(
            f"memory        {facts['memory_available_gib']} of {facts['memory_total_gib']} GiB available"
        )
    typer.echo(f"home          {facts['home']} (from {facts['home_source']})")
    exists = "exists" if facts["database_exists"] else "not created yet"
    typer.echo(f"database      {facts['database']} ({exists})")
    sampling = facts["sampling"]
    if "error" in sampling:
        typer.echo(f"sampling      {sampling['model']}: {sampling['error']}")
        return
    found = "" if sampling["generation_config"] else "; it has no generation_config here"
    typer.echo(f"sampling      {sampling['model']} by default (--model for another){found}:")
    for line in sampling["lines"]:
        typer.echo(f"  {line}")

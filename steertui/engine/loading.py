"""Load any causal LM by hub id, local folder, `.gguf` file, `toy` or `smollm2`.

A `.gguf` file is read once through transformers' `gguf_file`, dequantized to float32 and
kept in the home (`<home>/models/<name>-<hash>/`, safetensors and tokenizer files, renamed into
place whole), so every later load is an ordinary, quick folder load.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from torch import nn

from steertui.engine.fingerprint import weights_fingerprint
from steertui.engine.layers import find_layers, hidden_size, module_device
from steertui.engine.sampling_defaults import SamplingDefaults, sampling_defaults
from steertui.errors import EngineError, first_line
from steertui.home import Home
from steertui.hub import (  # noqa: F401 - the model names live in hub, torch-free
    SMOLLM2_FILE,
    SMOLLM2_INSTALL,
    SMOLLM2_NAMES,
    SMOLLM2_PACKAGE,
    TOY_NAMES,
    check_hub_model,
    is_gguf_file,
    is_toy_path,
    model_id_for,
    resolve_model_name,
    smollm2_path,
    toy_path,
)
from steertui.toy import card as toy_card
from steertui.validation import DTYPE_NAMES, dtype_name


def _config_errors() -> tuple[type[Exception], ...]:
    """What `AutoConfig.from_pretrained` raises for an unusable config: a missing or invalid
    file, and a field of the wrong type (`"hidden_size": "big"`: huggingface_hub's
    strict-dataclass error where it has one, a TypeError before that)."""
    try:
        from huggingface_hub.errors import StrictDataclassError
    except ImportError:
        return (OSError, ValueError, TypeError)
    return (OSError, ValueError, TypeError, StrictDataclassError)


CONFIG_ERRORS = _config_errors()


def load_config(
    name: str | None,
    trust_remote_code: bool = False,
    home: Home | str | os.PathLike[str] | None = None,
) -> Any:
    """A model's config without its weights (a `.gguf` file's from its float32 copy in `home`
    if there is one, else from its metadata); raises what `AutoConfig.from_pretrained` raises."""
    local_only = check_hub_model(name)  # offline: one line at once, not 25 s of hub retries
    from transformers import AutoConfig

    source = resolve_model_name(name)
    with quiet_transformers():
        if is_gguf_file(source):
            the_home = home if isinstance(home, Home) else Home.resolve(home)
            cached = gguf_cache_dir(source, the_home)
            if (cached / "config.json").is_file():
                return AutoConfig.from_pretrained(str(cached))
            path = Path(source)
            return AutoConfig.from_pretrained(str(path.parent), gguf_file=path.name)
        return AutoConfig.from_pretrained(
            source, trust_remote_code=trust_remote_code, local_files_only=local_only
        )


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' info/warning logs and its progress bars ("Loading weights", the
    GGUF dequantizing bar) while steertui loads or runs a model; the caller shows its own."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    gguf_utils: Any = None
    gguf_tqdm: Any = None
    with contextlib.suppress(ImportError):
        # Its dequantizing loop uses tqdm directly, not transformers' switchable one.
        from transformers import modeling_gguf_pytorch_utils as gguf_utils

        gguf_tqdm = getattr(gguf_utils, "tqdm", None)
        if gguf_tqdm is not None:
            gguf_utils.tqdm = hf_logging.tqdm
    try:
        yield
    finally:
        if gguf_utils is not None and gguf_tqdm is not None:
            gguf_utils.tqdm = gguf_tqdm
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def gguf_cache_dir(gguf: str | os.PathLike[str], home: Home) -> Path:
    """Where the dequantized copy of `gguf` lives: keyed by its path, size and mtime."""
    path = Path(gguf).resolve()
    st = path.stat()
    key = hashlib.sha256(f"{path}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:12]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", path.stem).strip("-.").lower() or "model"
    return home.models_dir / f"{stem}-{key}"


def materialize_gguf(
    gguf: str | os.PathLike[str],
    home: Home,
    trust_remote_code: bool = False,
    status: Callable[[str], None] | None = None,
) -> tuple[Path, bool]:
    """A folder holding `gguf` dequantized to float32 safetensors plus its tokenizer.

    Returns `(folder, converted_now)`. The folder is written under a temporary name and renamed
    into place whole, so a crash or a concurrent loader never leaves a half-written cache.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(gguf).resolve()
    target = gguf_cache_dir(path, home)
    if (target / "config.json").is_file():
        return target, False
    if status is not None:
        status(f"dequantizing {path.name} to float32, once (kept in {home.models_dir})")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        try:
            model = AutoModelForCausalLM.from_pretrained(
                str(path.parent),
                gguf_file=path.name,
                dtype=torch.float32,
                trust_remote_code=trust_remote_code,
            )
            tokenizer = AutoTokenizer.from_pretrained(
                str(path.parent), gguf_file=path.name, trust_remote_code=trust_remote_code
            )
        except (OSError, ValueError, KeyError, RuntimeError, NotImplementedError) as exc:
            raise EngineError(
                f"GGUF file {path} could not be read: {first_line(exc, 200)}"
            ) from exc
        # Dequantized, the weights are plain float32: drop the GGUF marker that forbids saving.
        setattr(model, "hf_quantizer", None)  # noqa: B010
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        del model
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / "config.json").is_file():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another loader finished first
            return target, False
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target, True


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise EngineError(
            f"device {device!r} is not a device: expected auto, cpu, cuda, cuda:N or mps"
        ) from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise EngineError(f"device {device!r} asked for, but torch sees no CUDA GPU here")
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise EngineError(
                f"device {device!r} asked for, but torch has no MPS (Apple GPU) device here"
            )
    elif dev.type not in ("cpu", "cuda", "meta"):
        backend = getattr(torch, dev.type, None)
        available = getattr(backend, "is_available", None)
        if not callable(available) or not available():
            raise EngineError(f"device {device!r} asked for, but torch has no {dev.type} here")
    return dev


_DTYPES = {
    name: {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[
        {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}.get(name, name)
    ]
    for name in DTYPE_NAMES
}


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """`auto`: bf16 on a GPU that supports it, else float32."""
    if dtype == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return _DTYPES[dtype_name(dtype, EngineError)]


@dataclass
class LoadedModel:
    """A model ready for steering: its blocks found, its tokenizer padded on the left."""

    model: nn.Module
    tokenizer: Any
    model_id: str
    device: torch.device
    dtype: torch.dtype
    layers: list[nn.Module]
    layers_path: str
    hidden_size: int
    notices: list[str] = field(default_factory=list)
    # Trained on one exchange only (its model card says so): prompts carry the last one only.
    single_turn: bool = False

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @cached_property
    def fingerprint(self) -> str:
        """Of the weights (`weights_fingerprint`): a built vector is reused only on the same."""
        return weights_fingerprint(self.model)

    @cached_property
    def sampling_defaults(self) -> SamplingDefaults:
        """The model's own sampling defaults (its generation_config, else known ones for the
        models steertui names, else steertui's), each with its source."""
        return sampling_defaults(self.model_id, getattr(self.model, "generation_config", None))

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    @classmethod
    def from_model(
        cls,
        model: nn.Module,
        tokenizer: Any,
        model_id: str | None = None,
        layers_path: str | None = None,
    ) -> LoadedModel:
        """Wrap a model the caller already loaded (the AutoSteer / llm_steer way)."""
        path, layers = find_layers(model, layers_path)
        embed: Any = getattr(model, "get_input_embeddings", lambda: None)()
        device = module_device(embed) if embed is not None else module_device(model)
        param = next(model.parameters())
        _prepare_tokenizer(tokenizer)
        name = model_id or getattr(model.config, "_name_or_path", "") or type(model).__name__
        if is_toy_path(str(name)):
            name = "toy"
        loaded = cls(
            model=model,
            tokenizer=tokenizer,
            model_id=str(name),
            device=device or param.device,
            dtype=param.dtype,
            layers=layers,
            layers_path=path,
            hidden_size=hidden_size(model.config),
            single_turn=name == "toy" and bool(toy_card().get("single_turn", False)),
        )
        if not loaded.has_chat_template:
            loaded.notices.append(
                f"{loaded.model_id} has no chat template: prompts are sent as plain 'role: text' lines"
            )
        return loaded


def _prepare_tokenizer(tokenizer: Any) -> None:
    tokenizer.padding_side = "left"
    # The engine checks every prompt against the model's context itself (engine/limits.py) and
    # says so in one line; transformers' own "longer than the specified maximum" is marked as
    # said, so it never adds a second line.
    warned = getattr(tokenizer, "deprecation_warnings", None)
    if isinstance(warned, dict):
        warned["sequence-length-is-longer-than-the-specified-maximum"] = True
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token is not None:
            tokenizer.pad_token = tokenizer.eos_token
        else:
            tokenizer.add_special_tokens({"pad_token": "<|pad|>"})


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


def load_model(
    name: str | None = "toy",
    device: str = "auto",
    dtype: str = "auto",
    device_map: str | None = None,
    layers_path: str | None = None,
    trust_remote_code: bool = False,
    home: Home | str | os.PathLike[str] | None = None,
    status: Callable[[str], None] | None = None,
) -> LoadedModel:
    """Load a causal LM and its tokenizer; every failure becomes one `EngineError` line.

    `home` holds the float32 copy of a `.gguf` model (default: the resolved data home).
    transformers' own logs and progress bars are off while it loads; `status`, if given, is
    told each slow step in one line, for the caller's own progress display.
    """
    # A hub id with no network: one line at once, not 25 s of hub retries; cached: no retries.
    local_only = check_hub_model(name)
    with quiet_transformers():
        return _load_model(
            name=name,
            device=device,
            dtype=dtype,
            device_map=device_map,
            layers_path=layers_path,
            trust_remote_code=trust_remote_code,
            home=home,
            status=status,
            local_only=local_only,
        )


def _load_model(
    name: str | None,
    device: str,
    dtype: str,
    device_map: str | None,
    layers_path: str | None,
    trust_remote_code: bool,
    home: Home | str | os.PathLike[str] | None,
    status: Callable[[str], None] | None,
    local_only: bool,
) -> LoadedModel:
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    source = resolve_model_name(name)
    shown = model_id_for(name)
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    notices: list[str] = []
    if source.lower().endswith(".gguf"):
        if not os.path.isfile(source):
            raise EngineError(f"GGUF file {source} not found")
        the_home = home if isinstance(home, Home) else Home.resolve(home)
        folder, converted = materialize_gguf(source, the_home, trust_remote_code, status)
        if converted:
            notices.append(f"{shown}: dequantized to float32 once, kept in {folder}")
        source = str(folder)
    if status is not None:
        status(f"loading {shown} on {dev} in {str(torch_dtype).removeprefix('torch.')}")
    try:
        config = AutoConfig.from_pretrained(
            source, trust_remote_code=trust_remote_code, local_files_only=local_only
        )
    except CONFIG_ERRORS as exc:
        if os.path.isdir(source):
            why = exc.__cause__ if isinstance(exc.__cause__, TypeError) else exc
            raise EngineError(
                f"model folder {source} has no usable config.json: {first_line(why, 200)}"
            ) from exc
        raise EngineError(
            f"model {shown!r} not found: it is not a local folder and the hub could not provide it "
            f"({first_line(exc, 200)})"
        ) from exc
    _check_causal(config, shown)
    kwargs: dict[str, Any] = {
        "dtype": torch_dtype,
        "trust_remote_code": trust_remote_code,
        "local_files_only": local_only,
    }
    if device_map:
        kwargs["device_map"] = device_map
    try:
        model = AutoModelForCausalLM.from_pretrained(source, config=config, **kwargs)
    except ValueError as exc:
        if "Unrecognized configuration class" in str(exc) or "AutoModelForCausalLM" in str(exc):
            raise EngineError(
                f"model {shown!r} is not a causal language model (its config is {type(config).__name__})"
            ) from exc
        raise EngineError(f"model {shown!r} failed to load: {first_line(exc, 200)}") from exc
    except (RuntimeError, torch.OutOfMemoryError) as exc:
        if _is_oom(exc):
            raise EngineError(
                f"out of memory while loading {shown!r} on {dev} in {torch_dtype}: try --dtype bfloat16, "
                "--device-map auto or a smaller model"
            ) from exc
        raise EngineError(f"model {shown!r} failed to load: {first_line(exc, 200)}") from exc
    except OSError as exc:
        raise EngineError(
            f"model {shown!r} weights could not be read: {first_line(exc, 200)}"
        ) from exc
    except SafetensorError as exc:  # a truncated or corrupt weights file
        raise EngineError(
            f"model {shown!r} weights could not be read (is a weights file truncated or "
            f"corrupt?): {first_line(exc, 200)}"
        ) from exc
    _check_finite(model, shown)
    if not device_map:
        try:
            model.to(dev)  # type: ignore[arg-type]  # transformers types .to for dtypes only
        except (RuntimeError, torch.OutOfMemoryError) as exc:
            if _is_oom(exc):
                raise EngineError(
                    f"out of memory while moving {shown!r} to {dev}: try --dtype bfloat16 or --device-map auto"
                ) from exc
            raise
    model.eval()
    model.requires_grad_(False)
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            source, trust_remote_code=trust_remote_code, local_files_only=local_only
        )
    except (OSError, ValueError) as exc:
        raise EngineError(
            f"model {shown!r} has no usable tokenizer: {first_line(exc, 200)}"
        ) from exc
    loaded = LoadedModel.from_model(model, tokenizer, model_id=shown, layers_path=layers_path)
    loaded.notices[:0] = notices
    return loaded


def _check_finite(model: nn.Module, shown: str) -> None:
    """Every weight is finite: a NaN or an infinity in the weights makes every answer fail
    later as non-finite logits, which would read as steering gone too far. A float32 sum per
    tensor (NaN and infinity carry through a sum; a 15th of `isfinite`'s cost on a CPU),
    gathered on the device, one copy to the host; the element test only names the culprit."""
    params = [(n, p) for n, p in model.named_parameters() if p.is_floating_point()]
    if not params:
        return
    device = params[0][1].device
    sums = torch.stack([p.sum(dtype=torch.float32).to(device) for _, p in params])
    if bool(torch.isfinite(sums).all()):
        return
    bad = [n for n, p in params if not bool(torch.isfinite(p).all())]
    if not bad:
        return  # a sum overflowed float32 but every weight is finite
    raise EngineError(
        f"model {shown!r} has weights that are not finite (NaN or infinity, first in {bad[0]}): "
        "its answers would be NaN whatever the steering; the weights file is damaged"
    )


def _check_causal(config: Any, shown: str) -> None:
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    auto_map = getattr(config, "auto_map", None) or {}
    if (
        config.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
        and "AutoModelForCausalLM" not in auto_map
    ):
        raise EngineError(
            f"model {shown!r} is not a causal language model (its config is {type(config).__name__})"
        )

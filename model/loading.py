"""Build a Decoder from a Hugging Face model folder: strict, safetensors-only, one copy of the weights in memory."""

import json
import math
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from .config import ModelConfig
from .decoder import Decoder
from .errors import ModelError
from .sources import resolve_source


def load_model(source: str | Path, *, device=None, dtype=None, revision=None, token=None, progress=None,
               max_bytes: int | None = None) -> Decoder:
    """Load a bundled model name, a local folder or a Hub repo id (see model/sources.py) as an eval-mode Decoder.

    device=None picks cuda, then mps, then cpu. dtype=None keeps the checkpoint's dtype on a GPU and uses float32
    on a CPU, where bfloat16 matmuls are slow and less exact. Weights larger than `max_bytes` in that dtype, or than
    a CPU machine's free memory, are refused before they are read.
    """
    folder = resolve_source(source, revision=revision, token=token, progress=progress)
    config = ModelConfig.from_file(folder / "config.json")
    device = pick_device(device)
    dtype = pick_dtype(dtype, config, device)

    files = weight_files(folder)
    check_size(files, dtype, device, max_bytes)
    weights = read_weights(files, device, dtype)
    check_layer_count(config, weights)  # before building: a config claiming a million layers would take an hour
    # Parameters on the meta device take no memory; the loaded tensors are then assigned in their place.
    with torch.device("meta"):
        model = Decoder(config)
    check_weights(model, weights)
    if config.tie_word_embeddings:
        weights["lm_head.weight"] = weights["embed_tokens.weight"]
    model.load_state_dict(weights, strict=True, assign=True)
    model.tie_weights()  # assignment replaced embed_tokens.weight, so lm_head must point to it again
    model.reset_rope(device)
    return model.eval().requires_grad_(False)


def pick_device(device) -> torch.device:
    if device is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise ModelError(f"Unknown device {device!r}: use cpu, cuda, cuda:N or mps (or None to pick one).") from None
    # Checked here, before any weight is read, rather than failing halfway through the load.
    if (device.type == "cuda" and not torch.cuda.is_available()) or (
        device.type == "mps" and not torch.backends.mps.is_available()
    ):
        raise ModelError(f"Device {str(device)!r} is not available on this machine: use cpu (or None to pick one).")
    return device


def pick_dtype(dtype, config: ModelConfig, device: torch.device) -> torch.dtype:
    if dtype is None:
        if device.type == "cpu":
            return torch.float32
        dtype = config.dtype
    asked = dtype
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype.removeprefix("torch."), None)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ModelError(f"dtype must be a floating-point torch dtype such as float32 or bfloat16, not {asked!r}.")
    return dtype


def weight_files(folder: Path) -> list[Path]:
    """The safetensors files of a checkpoint: the shards its index names, or its *.safetensors files."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        except (ValueError, KeyError, TypeError, AttributeError) as e:  # not JSON, no weight_map, or the wrong shape
            raise ModelError(f"{index.name} is not a valid shard index ({type(e).__name__}: {e}): download it "
                             "again.") from None
        # By name, not by resolving: in the Hugging Face cache every shard is a symlink into a blobs/ folder.
        outside = [s for s in shards if not isinstance(s, str) or Path(s).is_absolute() or ".." in Path(s).parts]
        if outside:
            raise ModelError(f"{index.name} names shards outside the checkpoint folder "
                             f"({', '.join(map(repr, outside))}): a shard must be a file in the folder itself.")
        missing = [s for s in shards if not (folder / s).is_file()]
        if missing:
            raise ModelError(f"The shard index names {', '.join(missing)}, which is not in {folder}.")
        return [folder / s for s in shards]
    files = sorted(folder.glob("*.safetensors"))
    if files:
        return files
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".ckpt"))
    if pickles:
        raise ModelError(
            f"{folder} has only pickled weights ({', '.join(pickles)}). They are refused because unpickling can run "
            "arbitrary code. Convert them once, in a trusted environment: load the model with transformers and call "
            "model.save_pretrained(folder, safe_serialization=True), which writes model.safetensors."
        )
    raise ModelError(f"No weights in {folder}: expected model.safetensors (or shards with an index).")


def available_memory() -> int | None:
    """Bytes this machine can still give a process (Linux's MemAvailable), or None where that is not known."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def check_size(files: list[Path], dtype: torch.dtype, device: torch.device, max_bytes: int | None = None) -> None:
    """Refuse, before reading anything, weights that take more than `max_bytes` once converted to `dtype`, or, on a
    CPU, more than this machine's free memory: running out would get the whole server killed, every session with
    it. (A GPU's own memory is not checked: torch reports running out of it as an error.)"""
    available = available_memory() if device.type == "cpu" else None
    if max_bytes is None and available is None:
        return
    needed = 0
    for path in files:
        try:
            with safe_open(path, framework="pt") as f:
                for key in f.keys():
                    needed += math.prod(f.get_slice(key).get_shape())
        except (SafetensorError, OSError):
            return  # read_weights says what is wrong with the file
    needed *= torch.empty((), dtype=dtype).element_size()
    size = f"These weights need {_readable(needed)} in {str(dtype).removeprefix('torch.')}"
    if max_bytes is not None and needed > max_bytes:
        raise ModelError(f"{size}, more than the {_readable(max_bytes)} this server allows for its models: choose a "
                         "smaller model.")
    if available is not None and needed > available:
        raise ModelError(f"{size}, and this machine has {_readable(available)} free: choose a smaller model, or a GPU.")


def _readable(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def read_weights(files: list[Path], device: torch.device, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """All tensors of `files`, renamed to the Decoder's parameter names, on `device` in `dtype`, converted one at a
    time."""
    weights = {}
    for path in files:
        try:
            with safe_open(path, framework="pt", device=str(device)) as f:
                for key in f.keys():
                    weights[key.removeprefix("model.")] = f.get_tensor(key).to(dtype)
        except PermissionError:
            raise ModelError(f"{path.name} cannot be read: this server has no permission to open it.") from None
        except (SafetensorError, OSError) as e:
            raise ModelError(f"{path.name} is not a readable safetensors file ({e}); it may be truncated or "
                             "corrupt: download it again.") from None
    return weights


def check_layer_count(config: ModelConfig, weights: dict[str, torch.Tensor]) -> None:
    """The weights hold exactly layers 0 .. num_hidden_layers - 1."""
    stored = {int(name.split(".")[1]) for name in weights if name.startswith("layers.") and name.split(".")[1].isdigit()}
    if stored != set(range(config.num_hidden_layers)):
        raise ModelError(f"config.json says num_hidden_layers = {config.num_hidden_layers:,}, but the weights hold "
                         f"{len(stored):,} layers: config.json and the weights do not belong together.")


def check_weights(model: Decoder, weights: dict[str, torch.Tensor]) -> None:
    """Every parameter present with its shape, and nothing unexpected; the error names the tensor."""
    expected = {name: p.shape for name, p in model.named_parameters(remove_duplicate=False)}
    if model.config.tie_word_embeddings:
        expected.pop("lm_head.weight")
        weights.pop("lm_head.weight", None)  # some tied checkpoints store a copy; the tie decides
    missing = sorted(expected.keys() - weights.keys())
    unexpected = sorted(weights.keys() - expected.keys())
    if missing:
        raise ModelError(f"The checkpoint lacks {len(missing)} tensor(s) this config needs, e.g. {missing[0]!r}: "
                         "the download is incomplete or config.json belongs to another model.")
    if unexpected:
        raise ModelError(f"The checkpoint has {len(unexpected)} tensor(s) this config does not use, e.g. "
                         f"{unexpected[0]!r}: config.json and the weights do not belong together.")
    for name, shape in expected.items():
        if weights[name].shape != shape:
            raise ModelError(f"Tensor {name!r} has shape {tuple(weights[name].shape)} but the config implies "
                             f"{tuple(shape)}: config.json and the weights do not belong together.")

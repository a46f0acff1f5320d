"""Run one forward pass and keep the internal quantities asked for, by name, as CPU tensors.

    t = trace(decoder, ids, capture="layers.*.self_attn.pattern")
    t["layers.0.self_attn.pattern"]        # (B, Hq, T, T) float32 on the CPU

On a GPU the captured tensors stay on the device until a name is first read: a view reads a few of the hundreds of
names a trace may keep, and copying all of them to the CPU would cost many times the forward itself (a full trace of
SmolLM2-135M at T = 512 is 1.4 GiB: 0.9 s over PCIe against a 30 ms forward on an H100).

Everything a trace records or edits lives in an object made for that one call and handed to the forward
(model/capture.py); the shared decoder is never modified, so any number of threads may trace it at once.
"""

import fnmatch
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save

from model import Capture, Decoder, ModelConfig, Tokenizer

from .edits import Edits
from .vocabulary import capture_names, shape_of

CaptureSpec = str | Iterable[str] | Callable[[str], bool] | None


@dataclass
class Trace:
    """The captured tensors of one forward, with the input, its readable tokens and the model's config."""

    tensors: dict[str, torch.Tensor]  # as captured: on the model's device until read (see __getitem__)
    input_ids: torch.Tensor  # (B, T) on the CPU
    tokens: list[str]  # readable strings of row 0, for axis labels
    config: ModelConfig
    edits: Edits = field(default_factory=Edits)
    prompt_length: int | None = None  # where generated tokens begin, for a trace of a generation
    saved_edits: str | None = None  # for a trace read back by Trace.load: its edits, described (functions don't keep)
    storage_dtype: torch.dtype = torch.float32  # of the CPU tensors a read returns

    def __getitem__(self, name: str) -> torch.Tensor:
        """The captured tensor, on the CPU in the storage dtype."""
        try:
            t = self.tensors[name]
        except KeyError:
            raise KeyError(f"{name!r} was not captured; captured: {', '.join(self.names()[:6])}, ...") from None
        if not t.is_cpu:
            # First read of a name captured on a GPU: the CPU copy replaces the device tensor, whose memory goes
            # back to the GPU. Two threads reading it at once both copy and store equal tensors: harmless.
            t = self.tensors[name] = t.to("cpu", self.storage_dtype)
        return t

    def __contains__(self, name: str) -> bool:
        return name in self.tensors

    def names(self) -> list[str]:
        return list(self.tensors)

    def pattern_by_group(self, layer: int) -> torch.Tensor:
        """The layer's attention pattern as (B, Hkv, G, T, T): query heads grouped by the KV head they share."""
        p = self[f"layers.{layer}.self_attn.pattern"]
        B, _, T, S = p.shape
        return p.view(B, self.config.num_key_value_heads, self.config.group_size, T, S)

    def nbytes(self) -> int:
        """The bytes of every captured tensor on the CPU, as returned by reading it."""
        item = torch.empty((), dtype=self.storage_dtype).element_size()
        return sum(t.numel() * (t.element_size() if t.is_cpu else item) for t in self.tensors.values())

    def save(self, path: str | Path) -> None:
        """Write the trace as one safetensors file (see to_bytes); `Trace.load` reads it back."""
        Path(path).write_bytes(self.to_bytes())

    def to_bytes(self) -> bytes:
        """The trace as safetensors: the tensors by name, the input ids, and as metadata the tokens, the model's
        config.json and a description of the edits."""
        tensors, seen = {}, set()
        for name in self.names():
            t = self[name]
            # resid_post of a layer *is* resid_pre of the next (no copy is made); safetensors wants one owner each
            tensors[name] = t.clone() if t.data_ptr() in seen else t.contiguous()
            seen.add(t.data_ptr())
        tensors[_INPUT_IDS] = self.input_ids.contiguous()
        metadata = {
            "names": json.dumps(self.names()),  # safetensors sorts its keys; keep the forward's order
            "tokens": json.dumps(self.tokens),
            "config": json.dumps(self.config.raw),
            "edits": repr(self.edits),
            "prompt_length": json.dumps(self.prompt_length),
        }
        return save(tensors, metadata=metadata)

    @classmethod
    def load(cls, path: str | Path) -> "Trace":
        """A trace saved with `save` (or `to_bytes`). Edits come back as their description only: `saved_edits`."""
        with safe_open(path, framework="pt") as f:
            metadata = f.metadata()
            stored = {name: f.get_tensor(name) for name in f.keys()}
        input_ids = stored.pop(_INPUT_IDS)
        tensors = {name: stored[name] for name in json.loads(metadata["names"])}
        config = ModelConfig.from_dict(json.loads(metadata["config"]))
        t = cls(tensors, input_ids, json.loads(metadata["tokens"]), config)
        t.prompt_length = json.loads(metadata["prompt_length"])
        t.saved_edits = metadata["edits"]
        return t


_INPUT_IDS = "__input_ids__"  # stored beside the captured names, which never start with an underscore


class _Recorder(Capture):
    """The capture object of one trace call: keeps the wanted names, applies the edits."""

    def __init__(self, wanted: Callable[[str], bool], edits: Edits, config: ModelConfig, storage: torch.dtype):
        self.wanted = wanted
        self.edits, self.config, self.storage = edits, config, storage
        self.functions = edits.functions(config)
        self.tensors: dict[str, torch.Tensor] = {}

    def __call__(self, name: str, x: torch.Tensor) -> torch.Tensor:
        fn = self.functions.get(name)
        if fn is not None:
            x = fn(x)
        if self.wanted(name):
            # Kept without a copy where possible: nothing later writes into these tensors (and under inference_mode
            # none has an autograd graph to detach). On the CPU they take the storage dtype now, to save the memory;
            # on a GPU they stay as they are until read (see Trace).
            self.tensors[name] = x.to(self.storage) if x.is_cpu else x
        return x

    def wants(self, name: str) -> bool:
        return self.wanted(name) or name in self.functions

    def skip_qk_norm(self, layer: int) -> bool:
        return layer in self.edits.qk_norm_off

    def rope_inv_freq(self, inv_freq: torch.Tensor) -> torch.Tensor:
        return self.edits.inv_freq(self.config, inv_freq)


def trace(
    decoder: Decoder,
    input_ids: torch.Tensor,
    *,
    capture: CaptureSpec = None,
    edits: Edits | Mapping[str, Callable] | None = None,
    tokenizer: Tokenizer | None = None,
    storage_dtype: torch.dtype = torch.float32,
) -> Trace:
    """One forward of `decoder` on `input_ids` (B, T), keeping the names `capture` selects.

    capture: None for every name; a glob ("layers.*.self_attn.pattern"), a list of globs, or a predicate.
    edits: an Edits value, or {name: fn(tensor) -> tensor} replacing that quantity for everything downstream.
    storage_dtype: float16 or bfloat16 halves the memory of a large capture.
    """
    edits = edits if isinstance(edits, Edits) else Edits(replace=dict(edits or {}))
    input_ids = torch.as_tensor(input_ids, dtype=torch.long)
    if input_ids.dim() == 1:
        input_ids = input_ids[None]
    recorder = _Recorder(selector(capture), edits, decoder.config, storage_dtype)
    with torch.inference_mode():
        decoder(input_ids.to(decoder.device), capture=recorder)
    ids = input_ids.cpu()
    tokens = tokenizer.tokens(ids[0].tolist()) if tokenizer else [str(i) for i in ids[0].tolist()]
    return Trace(recorder.tensors, ids, tokens, decoder.config, edits, storage_dtype=storage_dtype)


def edited_logits(decoder: Decoder, input_ids: torch.Tensor, edits: Edits, *, logits_to_keep: int = 1) -> torch.Tensor:
    """The float32 logits (B, logits_to_keep, V) of an edited forward, capturing nothing: for many edited runs
    where only the prediction matters (activation patching)."""
    recorder = _Recorder(selector([]), edits, decoder.config, torch.float32)
    with torch.inference_mode():
        logits = decoder(input_ids.to(decoder.device), capture=recorder, logits_to_keep=logits_to_keep)
    return logits.float().cpu()


def trace_generation(
    decoder: Decoder,
    input_ids: torch.Tensor,
    max_new_tokens: int,
    *,
    capture: CaptureSpec = None,
    edits: Edits | Mapping[str, Callable] | None = None,
    tokenizer: Tokenizer | None = None,
    **sampling,
) -> Trace:
    """Generate a continuation (KV cache, unedited model), then trace prompt + continuation in one forward."""
    input_ids = torch.as_tensor(input_ids, dtype=torch.long).reshape(1, -1)
    full = decoder.generate(input_ids.to(decoder.device), max_new_tokens, **sampling).cpu()
    t = trace(decoder, full, capture=capture, edits=edits, tokenizer=tokenizer)
    t.prompt_length = input_ids.shape[1]
    return t


def selector(capture: CaptureSpec) -> Callable[[str], bool]:
    """A predicate on names from a capture spec. It remembers its answers: a forward asks about every name it
    produces, hundreds per call, and the answer for a name never changes."""
    if capture is None:
        return _everything
    if callable(capture):
        return cache(capture)
    return _glob_matcher((capture,) if isinstance(capture, str) else tuple(capture))


def _everything(name: str) -> bool:
    return True


@lru_cache(maxsize=256)
def _glob_matcher(patterns: tuple[str, ...]) -> Callable[[str], bool]:
    """Shared by every trace with the same globs (a pure function of them), so its answers outlive one call."""
    regex = re.compile("|".join(fnmatch.translate(p) for p in patterns)) if patterns else None
    return cache(lambda name: regex is not None and regex.match(name) is not None)


def estimate_bytes(
    config: ModelConfig, tokens: int, capture: CaptureSpec = None, *, batch: int = 1, storage_dtype=torch.float32
) -> int:
    """The memory a trace of (batch, tokens) ids with this capture spec will hold, before running it."""
    wanted = selector(capture)
    item = torch.empty((), dtype=storage_dtype).element_size()
    total = 0
    for name in capture_names(config):
        if wanted(name):
            total += item * torch.Size(shape_of(name, config, batch, tokens)).numel()
    return total

"""The decoder's hyper-parameters, read from a Hugging Face config.json."""

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ModelError

SUPPORTED_MODEL_TYPES = ("llama", "mistral", "qwen2", "qwen3")
SUPPORTED_ROPE_TYPES = ("default", "linear", "llama3")


@dataclass(frozen=True)
class ModelConfig:
    model_type: str  # "llama" | "mistral" | "qwen2" | "qwen3": decides biases and QK-norm below
    vocab_size: int
    hidden_size: int  # D, the width of the residual stream
    intermediate_size: int  # F, SwiGLU's hidden width (about 8/3 * D, rounded)
    num_hidden_layers: int
    num_attention_heads: int  # Hq
    num_key_value_heads: int  # Hkv: equal to Hq is MHA, 1 is MQA, in between is GQA
    head_dim: int  # read from the file: Qwen3-0.6B has 128 while D / Hq is 64
    max_position_embeddings: int  # the context length the model was trained for
    rms_norm_eps: float
    rope_theta: float  # the base of RoPE's inverse frequencies
    # {"rope_type": "llama3" | "linear", "factor": ..., ...} or None: how long-context models stretch RoPE
    rope_scaling: dict | None = None
    tie_word_embeddings: bool = False  # lm_head reuses embed_tokens (small models save V * D parameters)
    attention_bias: bool = False  # bias on q/k/v: Qwen2 always, Llama/Qwen3 optionally, Mistral never
    attention_output_bias: bool = False  # bias on o_proj: Llama/Qwen3 attention_bias (Qwen2 has none)
    mlp_bias: bool = False
    qk_norm: bool = False  # Qwen3: per-head RMSNorm of q and k before RoPE
    sliding_window: int | None = None  # Mistral v0.1: each query sees only the last `sliding_window` keys
    bos_token_id: int | None = None
    eos_token_ids: tuple[int, ...] = ()  # generation stops at any of these
    dtype: str = "float32"  # the checkpoint's dtype, used on a GPU when no dtype is asked for
    raw: dict = field(default_factory=dict, compare=False, repr=False)  # the file as read, for display

    @property
    def group_size(self) -> int:
        """G: how many query heads share one key/value head."""
        return self.num_attention_heads // self.num_key_value_heads

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        if not isinstance(d, dict):
            raise ModelError(f"config.json must hold a JSON object of settings, not a {type(d).__name__}.")
        model_type = d.get("model_type")
        if model_type is None:
            raise ModelError(
                f"config.json has no model_type. Supported: {', '.join(SUPPORTED_MODEL_TYPES)}: is this the config "
                "of a decoder-only language model?"
            )
        if model_type not in SUPPORTED_MODEL_TYPES:
            raise ModelError(
                f"Unsupported model_type {model_type!r}. Supported: {', '.join(SUPPORTED_MODEL_TYPES)} "
                "(Llama 2/3, TinyLlama, SmolLM, Mistral, Qwen2/2.5, Qwen3)."
            )
        missing = [k for k in _REQUIRED if k not in d]
        if missing:
            raise ModelError(
                f"config.json lacks {', '.join(missing)}; it is not a complete {model_type} config: use the "
                "config.json that was saved with the weights."
            )
        _check_sizes(d)
        if d.get("hidden_act", "silu") != "silu":
            raise ModelError(f"hidden_act {d['hidden_act']!r} is not supported: this decoder implements SwiGLU (silu).")

        theta, scaling = _rope_settings(d)
        heads = d["num_attention_heads"]
        kv_heads = d.get("num_key_value_heads") or heads
        if heads % kv_heads:
            raise ModelError(f"num_attention_heads ({heads}) must be a multiple of num_key_value_heads ({kv_heads}).")
        head_dim = d.get("head_dim") or d["hidden_size"] // heads
        if head_dim < 2 or head_dim % 2:
            raise ModelError(f"config.json: each head needs an even size of at least 2 (RoPE turns pairs of numbers); "
                             f"head_dim is {head_dim} ({'head_dim' if d.get('head_dim') else 'hidden_size / heads'}).")
        tie = d.get("tie_word_embeddings", False)
        if not isinstance(tie, bool):
            raise ModelError(f"config.json: tie_word_embeddings must be true or false, not {tie!r}.")
        eos = d.get("eos_token_id")
        eos_ids = eos if isinstance(eos, list) else ([] if eos is None else [eos])
        if any(type(i) is not int or i < 0 for i in eos_ids):
            raise ModelError(f"config.json: eos_token_id must be a token id or a list of them, not {eos!r}.")
        return cls(
            model_type=model_type,
            vocab_size=d["vocab_size"],
            hidden_size=d["hidden_size"],
            intermediate_size=d["intermediate_size"],
            num_hidden_layers=d["num_hidden_layers"],
            num_attention_heads=heads,
            num_key_value_heads=kv_heads,
            head_dim=head_dim,
            max_position_embeddings=d["max_position_embeddings"],
            rms_norm_eps=d["rms_norm_eps"],
            rope_theta=theta,
            rope_scaling=scaling,
            tie_word_embeddings=tie,
            attention_bias=model_type == "qwen2" or (model_type != "mistral" and d.get("attention_bias", False)),
            attention_output_bias=model_type in ("llama", "qwen3") and d.get("attention_bias", False),
            mlp_bias=model_type == "llama" and d.get("mlp_bias", False),
            qk_norm=model_type == "qwen3",
            sliding_window=_sliding_window(model_type, d),
            bos_token_id=d.get("bos_token_id"),
            eos_token_ids=tuple(eos_ids),
            dtype=str(d.get("dtype") or d.get("torch_dtype") or "float32"),
            raw=d,
        )

    @classmethod
    def from_file(cls, path: str | Path) -> "ModelConfig":
        path = Path(path)
        if not path.is_file():
            raise ModelError(f"No config.json in {path.parent}: a Hugging Face model folder needs one.")
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:  # binary junk fails before the JSON parser sees it
            raise ModelError(f"{path} is not valid JSON ({e}): download or write it again.") from None
        except RecursionError:  # e.g. 10,000 nested lists: no config is shaped like that
            raise ModelError(f"{path} nests too deeply to be a model config.") from None
        except OSError as e:  # unreadable: permissions, a folder of that name, ...
            raise ModelError(f"{path} cannot be read ({e.strerror or type(e).__name__}).") from None
        return cls.from_dict(d)


_SIZES = (
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "max_position_embeddings",
)
_REQUIRED = (*_SIZES, "rms_norm_eps")


def _check_sizes(d: dict) -> None:
    """Sizes must be positive integers: a string or a zero here would otherwise fail deep inside torch."""
    for key in (*_SIZES, "num_key_value_heads", "head_dim"):  # the last two may be absent or null
        value = d.get(key)
        if value is not None and (type(value) is not int or value <= 0):
            raise ModelError(f"config.json: {key} must be a positive integer, not {value!r}.")
    _positive_number(d["rms_norm_eps"], "rms_norm_eps")


def _rope_settings(d: dict) -> tuple[float, dict | None]:
    """RoPE's theta and scaling from either config layout.

    Older files have a top-level `rope_theta` and `rope_scaling: {"type" | "rope_type": ...}`; transformers 5 writes
    `rope_parameters: {"rope_theta": ..., "rope_type": ...}`. Both end up as (theta, scaling-or-None).
    """
    field = "rope_parameters" if d.get("rope_parameters") else "rope_scaling"
    params = d.get(field) or {}
    if not isinstance(params, dict):
        raise ModelError(f"config.json: {field} must be an object of settings, not {params!r}.")
    params = dict(params)
    theta = _positive_number(params.pop("rope_theta", d.get("rope_theta", 10000.0)), "rope_theta")
    rope_type = params.pop("rope_type", None) or params.pop("type", None) or "default"
    params.pop("type", None)
    if rope_type not in SUPPORTED_ROPE_TYPES:
        raise ModelError(f"RoPE scaling {rope_type!r} is not supported (supported: {', '.join(SUPPORTED_ROPE_TYPES)}).")
    if params.get("partial_rotary_factor", 1.0) != 1.0:
        raise ModelError("partial_rotary_factor < 1 is not supported: this decoder rotates the whole head.")
    if rope_type == "default":
        return theta, None
    # What model/rope.py reads for each scaling, checked here so that a bad value is named instead of failing there.
    needed = {"linear": ("factor",),
              "llama3": ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings")}
    for key in needed[rope_type]:
        params[key] = _positive_number(params.get(key), f"{field}.{key}")
    return theta, {"rope_type": rope_type, **params}


def _positive_number(value, name: str) -> float:
    """A finite number above 0 (a bool, a string, NaN or 0 would make every rotation angle nonsense)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ModelError(f"config.json: {name} must be a positive number, not {value!r}.")
    return float(value)


def _sliding_window(model_type: str, d: dict) -> int | None:
    """Mistral applies `sliding_window` to every layer; Qwen applies it only with `use_sliding_window`, per layer."""
    if model_type == "mistral":
        window = d.get("sliding_window")
        if window is not None and (type(window) is not int or window <= 0):
            raise ModelError(f"config.json: sliding_window must be a positive integer or null, not {window!r}.")
        return window
    if d.get("use_sliding_window"):
        raise ModelError(
            "use_sliding_window with Qwen's per-layer windows is not supported; released Qwen2/2.5/3 checkpoints "
            "leave it off."
        )
    return None

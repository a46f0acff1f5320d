"""A readable, from-scratch Llama / Mistral / Qwen2 / Qwen3 decoder that computes what transformers computes."""

from .capture import NO_CAPTURE, Capture
from .config import SUPPORTED_MODEL_TYPES, ModelConfig
from .decoder import Decoder
from .errors import ModelError
from .kv_cache import KVCache
from .loading import load_model
from .sources import DEFAULT_MODEL, bundled_models, resolve_source
from .tokenizer import Tokenizer, load_tokenizer

__all__ = [
    "Capture",
    "NO_CAPTURE",
    "DEFAULT_MODEL",
    "Decoder",
    "KVCache",
    "ModelConfig",
    "ModelError",
    "SUPPORTED_MODEL_TYPES",
    "Tokenizer",
    "bundled_models",
    "load_model",
    "load_tokenizer",
    "resolve_source",
]

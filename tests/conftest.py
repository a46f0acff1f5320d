"""Tiny random checkpoints that transformers builds and saves, so tests compare against it without downloads."""

import shutil
from pathlib import Path

import pytest
import torch
from streamlit.runtime.pages_manager import PagesManager

from model.sources import BUNDLED_DIR

pytest_plugins = ["tests.fake_hub"]  # its fixtures: hf_home, hub, checkpoint

BUNDLED = BUNDLED_DIR / "stories260K"  # the default model: its config, and a tokenizer for the tiny checkpoints

# The test models are tiny: a second intra-op thread only adds hand-off overhead, and on a busy machine it makes
# thousands of small forwards many times slower.
torch.set_num_threads(1)

# Small enough to build in milliseconds, large enough to exercise GQA (4 query heads over 2 KV heads).
BASE = dict(
    vocab_size=128,
    hidden_size=64,
    intermediate_size=96,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=128,
    rms_norm_eps=1e-6,
    bos_token_id=1,
    eos_token_id=2,
)
LLAMA3_SCALING = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 32,
}

# name -> (transformers config class name, overrides): every family and feature the decoder claims.
VARIANTS = {
    "llama-gqa-llama3": ("LlamaConfig", dict(rope_scaling=LLAMA3_SCALING, rope_theta=500000.0)),
    "llama-linear-mha-tied": (
        "LlamaConfig",
        dict(rope_scaling={"type": "linear", "factor": 2.0}, num_key_value_heads=4, tie_word_embeddings=True),
    ),
    "llama-mqa-bias": ("LlamaConfig", dict(num_key_value_heads=1, attention_bias=True, mlp_bias=True)),
    "mistral-window": ("MistralConfig", dict(sliding_window=8, head_dim=16)),
    "qwen2-bias": ("Qwen2Config", dict(tie_word_embeddings=True)),
    "qwen3-qknorm": ("Qwen3Config", dict(head_dim=32)),  # head_dim != hidden / heads (16), as in Qwen3-0.6B
}


def build_hf_model(variant: str, **extra):
    import transformers

    class_name, overrides = VARIANTS[variant]
    config = getattr(transformers, class_name)(**{**BASE, **overrides, **extra})
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager").eval()
    with torch.no_grad():  # random norms and biases, so that a missed gain or bias cannot pass unnoticed
        for name, p in model.named_parameters():
            if "norm" in name or name.endswith("bias"):
                p.copy_(1.0 + 0.5 * torch.randn_like(p) if "norm" in name else 0.1 * torch.randn_like(p))
    return model


def save_hf_model(model, folder: Path, **save_kwargs) -> Path:
    model.save_pretrained(folder, safe_serialization=True, **save_kwargs)
    return folder


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """variant -> (folder, transformers model), built once per test session."""
    cache = {}

    def get(variant: str):
        if variant not in cache:
            model = build_hf_model(variant)
            cache[variant] = (save_hf_model(model, tmp_path_factory.mktemp(variant)), model)
        return cache[variant]

    return get


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory):
    """(variant, **config overrides) -> a folder the app can open: a tiny random checkpoint with a vocabulary of
    512 and the bundled stories260K tokenizer.json, built once per test session."""
    cache = {}

    def get(variant: str, **extra) -> Path:
        key = (variant, *sorted(extra.items()))
        if key not in cache:
            model = build_hf_model(variant, vocab_size=512, **extra)
            folder = save_hf_model(model, tmp_path_factory.mktemp(variant))
            shutil.copy(BUNDLED / "tokenizer.json", folder)
            cache[key] = folder
        return cache[key]

    return get


def random_ids(vocab: int, batch: int = 2, tokens: int = 24, seed: int = 0) -> torch.Tensor:
    return torch.randint(3, vocab, (batch, tokens), generator=torch.Generator().manual_seed(seed))


@pytest.fixture(autouse=True)
def navigation_every_run(monkeypatch):
    """Keep app.py's st.navigation in charge under AppTest.

    AppTest builds a fresh PagesManager on every run and, seeing the pages/ folder, would run the selected page
    file alone (Streamlit's old folder-based multipage mode), skipping app.py and its sidebar. A real server
    leaves that mode for good once app.py has called st.navigation (see explorer/app_state.py for its first
    request).
    """
    init = PagesManager.__init__

    def without_pages_folder(self, *args, **kwargs):
        PagesManager.uses_pages_directory = False
        init(self, *args, **kwargs)

    monkeypatch.setattr(PagesManager, "__init__", without_pages_folder)

"""Save a Decoder as a standard Hugging Face folder that both this project and transformers load."""

import json
import shutil
from pathlib import Path

from safetensors.torch import save_file

from model import Decoder
from model.sources import BUNDLED_DIR

ARCHITECTURES = {"llama": "LlamaForCausalLM", "qwen3": "Qwen3ForCausalLM"}


def hf_config(model: Decoder) -> dict:
    c = model.config
    return {
        "architectures": [ARCHITECTURES[c.model_type]],
        "model_type": c.model_type,
        "vocab_size": c.vocab_size,
        "hidden_size": c.hidden_size,
        "intermediate_size": c.intermediate_size,
        "num_hidden_layers": c.num_hidden_layers,
        "num_attention_heads": c.num_attention_heads,
        "num_key_value_heads": c.num_key_value_heads,
        "head_dim": c.head_dim,
        "max_position_embeddings": c.max_position_embeddings,
        "rms_norm_eps": c.rms_norm_eps,
        "rope_theta": c.rope_theta,
        "hidden_act": "silu",
        "attention_bias": False,
        "tie_word_embeddings": c.tie_word_embeddings,
        "bos_token_id": c.bos_token_id,
        "eos_token_id": c.eos_token_ids[0],
        "torch_dtype": "float32",
    }


def save_hf_folder(model: Decoder, folder: Path, tokenizer_from: str = "stories260K") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(hf_config(model), indent=2) + "\n")
    c = model.config
    gen = {"bos_token_id": c.bos_token_id, "eos_token_id": c.eos_token_ids[0], "do_sample": False}
    (folder / "generation_config.json").write_text(json.dumps(gen, indent=2) + "\n")
    # Checkpoint names carry transformers' "model." prefix, except lm_head, which tied models omit.
    weights = {
        name if name.startswith("lm_head") else f"model.{name}": p.detach().contiguous()
        for name, p in model.state_dict().items()
        if not (c.tie_word_embeddings and name == "lm_head.weight")
    }
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    shutil.copy(BUNDLED_DIR / tokenizer_from / "tokenizer.json", folder / "tokenizer.json")

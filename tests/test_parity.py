"""Our decoder against transformers on the same weights: logits equal in float32, for every family and feature."""

import pytest
import torch

from model import load_model
from tests.conftest import VARIANTS, build_hf_model, random_ids, save_hf_model


@pytest.mark.parametrize("variant", VARIANTS)
def test_logits_match_transformers(variant, tiny_checkpoint):
    folder, hf = tiny_checkpoint(variant)
    ours = load_model(folder, device="cpu")
    ids = random_ids(ours.config.vocab_size, tokens=40)  # longer than the llama3 original context and the window
    with torch.no_grad():
        expected = hf(ids).logits
    torch.testing.assert_close(ours(ids), expected, atol=1e-5, rtol=0)


def test_sharded_checkpoint(tmp_path):
    hf = build_hf_model("qwen3-qknorm")
    folder = save_hf_model(hf, tmp_path, max_shard_size="40KB")
    assert (folder / "model.safetensors.index.json").is_file()
    assert len(list(folder.glob("*.safetensors"))) > 1
    ids = random_ids(128)
    with torch.no_grad():
        torch.testing.assert_close(load_model(folder, device="cpu")(ids), hf(ids).logits, atol=1e-5, rtol=0)


def test_bfloat16_checkpoint_loads_as_float32(tmp_path):
    hf = build_hf_model("llama-gqa-llama3").to(torch.bfloat16)
    folder = save_hf_model(hf, tmp_path)
    ours = load_model(folder, device="cpu")
    assert ours.dtype == torch.float32 and ours.config.dtype == "bfloat16"
    ids = random_ids(128)
    with torch.no_grad():
        expected = hf.float()(ids).logits  # the bf16 values widened exactly, then computed in float32
    torch.testing.assert_close(ours(ids), expected, atol=1e-5, rtol=0)


def test_rope_parameters_and_rope_scaling_layouts_agree(tiny_checkpoint):
    """transformers 5 writes rope_parameters; older files use rope_theta + rope_scaling with "type"."""
    from model import ModelConfig

    folder, _ = tiny_checkpoint("llama-gqa-llama3")
    new = ModelConfig.from_file(folder / "config.json")
    old_layout = {k: v for k, v in new.raw.items() if k != "rope_parameters"}
    old_layout["rope_theta"] = new.rope_theta
    old_layout["rope_scaling"] = {"type": "llama3", **{k: v for k, v in new.rope_scaling.items() if k != "rope_type"}}
    old = ModelConfig.from_dict(old_layout)
    assert (old.rope_theta, old.rope_scaling) == (new.rope_theta, new.rope_scaling)
    assert new.rope_scaling["rope_type"] == "llama3" and new.rope_theta == 500000.0

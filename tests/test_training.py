"""The training code behind the bundled Llama/Qwen3 pair and the stability lab: it learns, the two models start
equal and differ only in QK-norm, the exported folders load in both this project and transformers, and the
largest-logit probe measures what it says."""

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch

from explorer.trace import trace
from model import ModelConfig, load_model
from model.sources import BUNDLED_DIR
from training.corpus import CORPUS_FILE, load_corpus
from training.export import save_hf_folder
from training.train import LargestLogit, TrainSettings, init_decoder, layer_gradient_norms, model_config, train

from .conftest import random_ids

TINY = dict(hidden=32, layers=2, heads=4, kv_heads=2, context=32)
PAIR = {"pair-llama": "llama", "pair-qwen3": "qwen3"}


def tiny_pair(seed: int = 0):
    return (init_decoder(model_config(qk_norm=False, **TINY), seed=seed),
            init_decoder(model_config(qk_norm=True, **TINY), seed=seed))


@pytest.mark.skipif(not CORPUS_FILE.is_file(), reason="the corpus is made by `python -m training.train_pair`")
def test_training_on_the_corpus_lowers_the_loss():
    model = init_decoder(model_config(qk_norm=True, **TINY), seed=0)
    settings = TrainSettings(steps=30, lr=1e-2, batch_size=8, seq_len=32, warmup=5)
    seen = []
    history = train(model, load_corpus(), settings, on_step=seen.append)
    assert seen == history and [r["step"] for r in history] == list(range(30))
    assert all(math.isfinite(r["loss"]) and r["max_logit"] > 0 for r in history)  # probe_every=1: every step
    # Each layer's gradient norm before clipping (checked by hand in the next test): every layer got signal.
    assert all(len(r["grad_norms"]) == TINY["layers"] and min(r["grad_norms"]) > 0 for r in history)
    assert history[0]["loss"] == pytest.approx(math.log(512), abs=0.1)  # a fresh model guesses uniformly
    assert history[-1]["loss"] < history[0]["loss"] - 0.5


def test_model_config_pair_differs_only_in_qk_norm():
    llama, qwen3 = (model_config(qk_norm=q, **TINY) for q in (False, True))
    differ = {f.name for f in dataclasses.fields(ModelConfig)
              if f.compare and getattr(llama, f.name) != getattr(qwen3, f.name)}
    assert differ == {"model_type", "qk_norm"}
    assert (llama.model_type, llama.qk_norm, qwen3.model_type, qwen3.qk_norm) == ("llama", False, "qwen3", True)
    assert (qwen3.num_attention_heads, qwen3.num_key_value_heads, qwen3.head_dim) == (4, 2, 8)


def test_init_decoder_gives_both_models_the_same_shared_weights():
    llama, qwen3 = tiny_pair()
    llama_weights, qwen3_weights = llama.state_dict(), qwen3.state_dict()
    extra = set(qwen3_weights) - set(llama_weights)
    assert extra == {f"layers.{i}.self_attn.{n}.weight" for i in range(2) for n in ("q_norm", "k_norm")}
    assert set(llama_weights) <= set(qwen3_weights)
    for name, weight in llama_weights.items():
        assert torch.equal(weight, qwen3_weights[name]), name
    assert all(torch.equal(qwen3_weights[n], torch.ones(8)) for n in extra)  # the norms start as identity gains
    again = init_decoder(model_config(qk_norm=False, **TINY), seed=0).state_dict()
    other = init_decoder(model_config(qk_norm=False, **TINY), seed=1).state_dict()
    assert torch.equal(again["layers.0.mlp.up_proj.weight"], llama_weights["layers.0.mlp.up_proj.weight"])
    assert not torch.equal(other["layers.0.mlp.up_proj.weight"], llama_weights["layers.0.mlp.up_proj.weight"])


def test_largest_logit_records_the_largest_absolute_visible_score():
    probe = LargestLogit()
    scores = torch.tensor([[1.5, float("-inf")], [-4.0, 2.0]])  # -inf: a masked (future) position
    assert probe("layers.0.self_attn.scores", scores) is scores  # records without editing
    probe("layers.0.self_attn.q", torch.full((2,), 100.0))  # not a score: ignored
    probe("layers.1.self_attn.scores", torch.tensor([[3.0, float("-inf")]]))
    assert probe.value == 4.0 and probe.wants("layers.3.self_attn.scores") and not probe.wants("logits")


def test_largest_logit_in_a_forward_matches_the_traced_scores():
    _, model = tiny_pair()
    with torch.no_grad():
        for p in model.parameters():  # larger weights than at initialisation, so the scores are far from zero
            p.mul_(6.0)
    ids = random_ids(512, batch=1, tokens=20)
    probe = LargestLogit()
    model(ids, capture=probe)
    scores = torch.stack(list(trace(model, ids, capture="layers.*.self_attn.scores").tensors.values()))
    expected = scores[torch.isfinite(scores)].abs().max().item()
    assert probe.value == pytest.approx(expected, rel=1e-6) and expected > 1.0


def perturbed(model):
    """Random norm gains, so that a norm weight lost in export or loading changes the logits."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.5 * torch.randn(p.shape, generator=generator))
    return model.eval()


def assert_loads_in_both_and_matches(folder: Path, ours_reference):
    import transformers

    ids = random_ids(512, tokens=24)
    with torch.no_grad():
        expected = ours_reference(ids)
        hf = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
        torch.testing.assert_close(hf(ids).logits, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(load_model(folder, device="cpu")(ids), expected, atol=1e-5, rtol=0)
    return hf


@pytest.mark.parametrize("qk_norm", [False, True], ids=["llama", "qwen3"])
def test_exported_folder_loads_in_this_project_and_in_transformers(tmp_path, qk_norm):
    model = perturbed(init_decoder(model_config(qk_norm=qk_norm, **TINY), seed=0))
    save_hf_folder(model, tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"config.json", "generation_config.json", "model.safetensors",
                                                   "tokenizer.json"}
    hf = assert_loads_in_both_and_matches(tmp_path, model)
    assert type(hf).__name__ == ("Qwen3ForCausalLM" if qk_norm else "LlamaForCausalLM")


# ---- the bundled pair (made by training/train_pair.py, shipped in the repository) ----

def bundled(name: str) -> Path:
    return BUNDLED_DIR / name


def test_bundled_pair_configs_differ_only_in_the_architecture():
    llama, qwen3 = (json.loads((bundled(n) / "config.json").read_text()) for n in PAIR)
    assert (llama["model_type"], qwen3["model_type"]) == ("llama", "qwen3")
    assert (llama["architectures"], qwen3["architectures"]) == (["LlamaForCausalLM"], ["Qwen3ForCausalLM"])
    same = {"model_type", "architectures"}
    assert {k: v for k, v in llama.items() if k not in same} == {k: v for k, v in qwen3.items() if k not in same}
    llama_config, qwen3_config = (ModelConfig.from_dict(c) for c in (llama, qwen3))
    assert dataclasses.replace(llama_config, model_type="qwen3", qk_norm=True) == qwen3_config


@pytest.mark.parametrize("name", PAIR)
def test_bundled_pair_loads_in_transformers_and_matches_our_decoder(name):
    folder = bundled(name)
    ours = load_model(folder, device="cpu")
    assert ours.config.model_type == PAIR[name] and ours.config.qk_norm == (name == "pair-qwen3")
    assert_loads_in_both_and_matches(folder, ours)
    size = sum(p.stat().st_size for p in folder.iterdir())
    assert size <= 5 * 2**20, f"{name} takes {size / 2**20:.1f} MiB"


def test_layer_gradient_norms_are_the_norm_of_each_blocks_whole_gradient():
    model = init_decoder(model_config(qk_norm=True, **TINY), seed=0)
    ids = torch.randint(0, 512, (2, 16), generator=torch.Generator().manual_seed(0))
    torch.nn.functional.cross_entropy(model(ids).flatten(0, 1), ids.flatten()).backward()
    expected = [torch.cat([p.grad.flatten() for p in block.parameters()]).norm().item() for block in model.layers]
    assert layer_gradient_norms(model) == pytest.approx(expected, rel=1e-6)

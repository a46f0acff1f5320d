"""The CUDA path in the checkpoint's dtype. Skipped without a GPU (CI has none)."""

from pathlib import Path

import pytest
import torch

import explorer
from model import load_model, load_tokenizer
from tests.conftest import random_ids

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def test_default_device_and_dtype_on_cuda(tiny_checkpoint):
    folder, _ = tiny_checkpoint("qwen3-qknorm")
    ours = load_model(folder, dtype="bfloat16")
    assert ours.device.type == "cuda" and ours.dtype == torch.bfloat16
    assert ours.inv_freq.dtype == torch.float32  # RoPE tables stay float32 under bfloat16 weights


@pytest.mark.parametrize("variant", ["llama-gqa-llama3", "qwen2-bias", "qwen3-qknorm"])
def test_bfloat16_logits_within_1e2_of_float32(variant, tiny_checkpoint):
    import transformers

    folder, _ = tiny_checkpoint(variant)
    ids = random_ids(128, tokens=64)
    reference = load_model(folder, device="cpu")(ids)
    ours = load_model(folder, device="cuda", dtype=torch.bfloat16)
    torch.testing.assert_close(ours(ids.cuda()).float().cpu(), reference, atol=1e-2, rtol=0)
    # and transformers in bfloat16 on the same GPU lands just as close. Its own copy, loaded as its users load it:
    # casting the session's shared float32 model to bfloat16 and back would round the weights every later test uses.
    theirs_model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16).to("cuda")
    with torch.no_grad():
        theirs = theirs_model(ids.cuda()).logits.float().cpu()
    torch.testing.assert_close(ours(ids.cuda()).float().cpu(), theirs, atol=1e-2, rtol=0)


def test_trace_on_cuda_returns_float32_cpu_tensors(tiny_checkpoint):
    ours = load_model(tiny_checkpoint("qwen3-qknorm")[0], device="cuda", dtype=torch.bfloat16)
    t = explorer.trace(ours, random_ids(128, tokens=16), capture=["*.pattern", "logits"])
    assert all(t[n].device.type == "cpu" and t[n].dtype == torch.float32 for n in t.names())
    p = t["layers.0.self_attn.pattern"]
    torch.testing.assert_close(p.sum(-1), torch.ones(p.shape[:-1]), atol=1e-5, rtol=0)


def test_trace_on_cuda_copies_a_name_to_the_cpu_when_first_read(tiny_checkpoint, tmp_path):
    ours = load_model(tiny_checkpoint("llama-gqa-llama3")[0], device="cuda", dtype=torch.bfloat16)
    ids = random_ids(128, tokens=16)
    t = explorer.trace(ours, ids)
    # nothing has crossed the bus yet, except RoPE's unscaled frequencies, which are computed on the CPU
    assert all(t.tensors[n].is_cuda for n in t.names() if n != "rope.inv_freq_unscaled")
    expected_bytes = explorer.estimate_bytes(ours.config, 16, batch=2)
    assert t.nbytes() == expected_bytes  # counted as the float32 CPU tensors reads will return
    logits = t["logits"]
    assert logits.is_cpu and t.tensors["logits"] is logits and t.tensors["embed"].is_cuda
    torch.testing.assert_close(logits, ours(ids.cuda()).float().cpu(), atol=0.1, rtol=0)
    t.save(tmp_path / "trace.safetensors")  # reads every name
    assert all(t.tensors[n].is_cpu and t.tensors[n].dtype == torch.float32 for n in t.names())
    assert t.nbytes() == expected_bytes
    saved = explorer.Trace.load(tmp_path / "trace.safetensors")
    assert all(torch.equal(saved[n], t[n]) for n in t.names())


def test_stories260k_greedy_text_on_cuda():
    folder = Path(__file__).resolve().parents[1] / "model" / "bundled" / "stories260K"
    ours = load_model("stories260K", device="cuda", dtype=torch.float32)
    out = ours.generate(torch.tensor([[1]], device="cuda"), 200)
    text = load_tokenizer("stories260K").decode(out[0].tolist())
    assert text == (folder / "expected_greedy_200.txt").read_text()

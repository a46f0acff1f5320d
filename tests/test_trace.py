"""The trace: every vocabulary name means what docs/capture-vocabulary.md says, checked against transformers."""

import threading

import pytest
import torch
import torch.nn.functional as F

import explorer
from explorer import Edits, capture_names, estimate_bytes, selector, shape_of, trace
from model import ModelError, load_model
from tests.conftest import random_ids

REFERENCE_VARIANTS = ["llama-gqa-llama3", "qwen2-bias", "qwen3-qknorm"]
ATOL = dict(atol=1e-5, rtol=0)


def hf_reference(hf, ids):
    """transformers' hidden states and eager attentions, plus the outputs of the modules named like ours."""
    outputs, hooks = {}, []
    for i, layer in enumerate(hf.model.layers):
        for ours, module in {
            "self_attn.q": layer.self_attn.q_proj,
            "self_attn.k": layer.self_attn.k_proj,
            "self_attn.v": layer.self_attn.v_proj,
            "self_attn.out": layer.self_attn.o_proj,
            "mlp.gate": layer.mlp.gate_proj,
            "mlp.up": layer.mlp.up_proj,
            "mlp.out": layer.mlp,
        }.items():
            hook = lambda mod, inp, out, key=f"layers.{i}.{ours}": outputs.__setitem__(key, out)
            hooks.append(module.register_forward_hook(hook))
    with torch.no_grad():
        result = hf(ids, output_hidden_states=True, output_attentions=True)
    for h in hooks:
        h.remove()
    return result, outputs


def per_head(x, heads, head_dim):
    B, T, _ = x.shape
    return x.view(B, T, heads, head_dim).transpose(1, 2)


@pytest.mark.parametrize("variant", REFERENCE_VARIANTS)
def test_names_match_transformers(variant, tiny_checkpoint):
    folder, hf = tiny_checkpoint(variant)
    ours = load_model(folder, device="cpu")
    c = ours.config
    ids = random_ids(c.vocab_size, tokens=40)
    t = trace(ours, ids)
    result, modules = hf_reference(hf, ids)

    for i in range(c.num_hidden_layers):
        torch.testing.assert_close(t[f"layers.{i}.resid_pre"], result.hidden_states[i], **ATOL)
        torch.testing.assert_close(t[f"layers.{i}.self_attn.pattern"], result.attentions[i], **ATOL)
        for q, heads in (("q", c.num_attention_heads), ("k", c.num_key_value_heads), ("v", c.num_key_value_heads)):
            expected = per_head(modules[f"layers.{i}.self_attn.{q}"], heads, c.head_dim)
            torch.testing.assert_close(t[f"layers.{i}.self_attn.{q}"], expected, **ATOL)
        for name in ("self_attn.out", "mlp.gate", "mlp.up", "mlp.out"):
            torch.testing.assert_close(t[f"layers.{i}.{name}"], modules[f"layers.{i}.{name}"], **ATOL)
    torch.testing.assert_close(t["norm.out"], result.hidden_states[-1], **ATOL)
    torch.testing.assert_close(t["logits"], result.logits, **ATOL)


@pytest.mark.parametrize("variant", REFERENCE_VARIANTS)
def test_derived_names_equal_recomputation(variant, tiny_checkpoint):
    """Each quantity equals the formula applied to the captured quantities it is made from."""
    folder, _ = tiny_checkpoint(variant)
    ours = load_model(folder, device="cpu")
    c = ours.config
    t = trace(ours, random_ids(c.vocab_size, tokens=16))

    def rms_norm(x, weight):
        rms = x.pow(2).mean(-1).add(c.rms_norm_eps).sqrt()
        return rms, weight * x / rms[..., None]

    cos, sin = t["rope.cos"], t["rope.sin"]
    for i, layer in enumerate(ours.layers):
        n = f"layers.{i}"
        for norm, source in (("input_layernorm", f"{n}.resid_pre"), ("post_attention_layernorm", f"{n}.resid_mid")):
            rms, out = rms_norm(t[source], getattr(layer, norm).weight)
            torch.testing.assert_close(t[f"{n}.{norm}.rms"], rms, **ATOL)
            torch.testing.assert_close(t[f"{n}.{norm}.out"], out, **ATOL)
        for q in ("q", "k"):
            before_rope = t[f"{n}.self_attn.{q}"]
            if c.qk_norm:
                _, normed = rms_norm(before_rope, getattr(layer.self_attn, f"{q}_norm").weight)
                torch.testing.assert_close(t[f"{n}.self_attn.{q}_normed"], normed, **ATOL)
                before_rope = normed
            else:
                assert f"{n}.self_attn.{q}_normed" not in t
            half = c.head_dim // 2
            rotated = before_rope * cos + torch.cat((-before_rope[..., half:], before_rope[..., :half]), -1) * sin
            torch.testing.assert_close(t[f"{n}.self_attn.{q}_rot"], rotated, **ATOL)
        torch.testing.assert_close(t[f"{n}.mlp.act"], F.silu(t[f"{n}.mlp.gate"]), **ATOL)
        torch.testing.assert_close(t[f"{n}.mlp.hidden"], t[f"{n}.mlp.act"] * t[f"{n}.mlp.up"], **ATOL)
        torch.testing.assert_close(t[f"{n}.resid_mid"], t[f"{n}.resid_pre"] + t[f"{n}.self_attn.out"], **ATOL)
    rms, out = rms_norm(t[f"layers.{c.num_hidden_layers - 1}.resid_post"], ours.norm.weight)
    torch.testing.assert_close(t["norm.rms"], rms, **ATOL)
    torch.testing.assert_close(t["norm.out"], out, **ATOL)


def test_every_name_has_its_documented_shape(tiny_checkpoint):
    for variant in REFERENCE_VARIANTS:
        ours = load_model(tiny_checkpoint(variant)[0], device="cpu")
        t = trace(ours, random_ids(128, batch=2, tokens=9))
        assert t.names() == capture_names(ours.config)
        for name in t.names():
            assert tuple(t[name].shape) == shape_of(name, ours.config, 2, 9), name
            assert t[name].device.type == "cpu" and t[name].dtype == torch.float32


def test_structural_properties(tiny_checkpoint):
    ours = load_model(tiny_checkpoint("llama-gqa-llama3")[0], device="cpu")
    c = ours.config
    t = trace(ours, random_ids(c.vocab_size, tokens=12))
    for i in range(c.num_hidden_layers - 1):
        assert torch.equal(t[f"layers.{i}.resid_post"], t[f"layers.{i + 1}.resid_pre"])
    p = t["layers.0.self_attn.pattern"]
    torch.testing.assert_close(p.sum(-1), torch.ones(p.shape[:-1]), **ATOL)
    assert torch.all(p.triu(diagonal=1) == 0)
    above_diagonal = torch.ones(12, 12, dtype=torch.bool).triu(diagonal=1)
    assert torch.all(t["layers.0.self_attn.scores"][..., above_diagonal] == float("-inf"))

    grouped = t.pattern_by_group(1)  # (B, Hkv, G, T, T): query head h sits in group h // G at member h % G
    assert grouped.shape == (2, c.num_key_value_heads, c.group_size, 12, 12)
    for h in range(c.num_attention_heads):
        assert torch.equal(grouped[:, h // c.group_size, h % c.group_size], t["layers.1.self_attn.pattern"][:, h])


def test_fused_and_explicit_attention_agree(tiny_checkpoint):
    for variant in ("llama-gqa-llama3", "mistral-window", "qwen3-qknorm"):
        ours = load_model(tiny_checkpoint(variant)[0], device="cpu")
        ids = random_ids(128, tokens=30)
        explicit = trace(ours, ids, capture=["*.z", "*.pattern", "logits"])
        fused = trace(ours, ids, capture=["*.z", "logits"])
        for name in fused.names():
            torch.testing.assert_close(explicit[name], fused[name], **ATOL)


def test_capture_keeps_only_what_is_asked(tiny_checkpoint):
    ours = load_model(tiny_checkpoint("qwen3-qknorm")[0], device="cpu")
    ids = random_ids(128)
    assert trace(ours, ids, capture="layers.*.self_attn.pattern").names() == [
        "layers.0.self_attn.pattern",
        "layers.1.self_attn.pattern",
    ]
    assert trace(ours, ids, capture=lambda n: n.endswith(".rms")).names() == [
        "layers.0.input_layernorm.rms",
        "layers.0.post_attention_layernorm.rms",
        "layers.1.input_layernorm.rms",
        "layers.1.post_attention_layernorm.rms",
        "norm.rms",
    ]
    assert trace(ours, ids, capture=["embed", "layers.1.mlp.[gu]*"]).names() == [
        "embed", "layers.1.mlp.gate", "layers.1.mlp.up"
    ]
    assert trace(ours, ids, capture=[]).names() == []
    half = trace(ours, ids, capture="logits", storage_dtype=torch.bfloat16)
    assert half["logits"].dtype == torch.bfloat16


def test_a_capture_spec_is_matched_once_per_name(tiny_checkpoint):
    ours = load_model(tiny_checkpoint("llama-gqa-llama3")[0], device="cpu")
    asked = []

    def wanted(name: str) -> bool:
        asked.append(name)
        return name == "logits"

    trace(ours, random_ids(128), capture=wanted)
    assert sorted(asked) == sorted(set(asked))  # a forward asks about each name many times: the answer is kept
    assert selector(["*.pattern"]) is selector(("*.pattern",))  # globs: shared by every trace that uses them


@pytest.mark.parametrize("spec", [None, "layers.*.self_attn.pattern", ["*.mlp.*", "embed"], "logits"])
def test_memory_estimate_matches_what_the_trace_holds(spec, tiny_checkpoint):
    ours = load_model(tiny_checkpoint("qwen3-qknorm")[0], device="cpu")
    for dtype in (torch.float32, torch.float16):
        t = trace(ours, random_ids(128, batch=2, tokens=33), capture=spec, storage_dtype=dtype)
        estimate = estimate_bytes(ours.config, 33, spec, batch=2, storage_dtype=dtype)
        assert abs(estimate - t.nbytes()) <= 0.1 * t.nbytes()


# ---- edits -------------------------------------------------------------------------------------------------


def test_ablated_head_is_zero_and_only_downstream_changes(tiny_checkpoint):
    ours = load_model(tiny_checkpoint("llama-gqa-llama3")[0], device="cpu")
    ids = random_ids(128, tokens=10)
    clean = trace(ours, ids)
    edited = trace(ours, ids, edits=Edits(ablate_heads={1: (2,)}))
    assert torch.all(edited["layers.1.self_attn.z"][:, 2] == 0)
    for h in (0, 1, 3):
        assert torch.equal(edited["layers.1.self_attn.z"][:, h], clean["layers.1.self_attn.z"][:, h])
    upstream = [n for n in clean.names() if n.startswith("layers.0.") or n.startswith("rope.") or n == "embed"]
    upstream += [f"layers.1.{q}" for q in ("resid_pre", "self_attn.q", "self_attn.k", "self_attn.pattern")]
    for name in upstream:
        assert torch.equal(edited[name], clean[name]), name
    for name in ("layers.1.self_attn.out", "layers.1.resid_post", "logits"):
        assert not torch.allclose(edited[name], clean[name]), name


def test_mean_ablation_replaces_a_head_by_its_average(tiny_checkpoint):
    ours = load_model(tiny_checkpoint("llama-gqa-llama3")[0], device="cpu")
    ids = random_ids(128, tokens=10)
    clean = trace(ours, ids, capture="layers.0.self_attn.z")["layers.0.self_attn.z"]
    z = trace(ours, ids, capture="layers.0.self_attn.z", edits=Edits(ablate_heads={0: (1,)}, ablation="mean"))[
        "layers.0.self_attn.z"
    ]
    torch.testing.assert_close(z[:, 1], clean[:, 1].mean(dim=(0, 1), keepdim=True).expand_as(z[:, 1]), **ATOL)


def test_qk_norm_off_changes_a_qwen3_model(tiny_checkpoint):
    ours = load_model(tiny_checkpoint("qwen3-qknorm")[0], device="cpu")
    ids = random_ids(128)
    clean = trace(ours, ids)
    edited = trace(ours, ids, edits=Edits(qk_norm_off=frozenset({1})))
    assert "layers.1.self_attn.q_normed" not in edited and "layers.0.self_attn.q_normed" in edited
    assert torch.equal(edited["layers.1.self_attn.q"], clean["layers.1.self_attn.q"])
    half = ours.config.head_dim // 2
    q = clean["layers.1.self_attn.q"]
    expected_rot = q * clean["rope.cos"] + torch.cat((-q[..., half:], q[..., :half]), -1) * clean["rope.sin"]
    torch.testing.assert_close(edited["layers.1.self_attn.q_rot"], expected_rot, **ATOL)
    assert not torch.allclose(edited["logits"], clean["logits"])


def test_added_qk_norm_gives_a_llama_unit_rms_queries(tiny_checkpoint):
    ours = load_model(tiny_checkpoint("llama-gqa-llama3")[0], device="cpu")
    t = trace(ours, random_ids(128), edits=Edits(qk_norm_add=frozenset({0})))
    for q in ("q", "k"):
        rms = t[f"layers.0.self_attn.{q}"].pow(2).mean(-1).sqrt()  # the edited q is what RoPE rotates
        torch.testing.assert_close(rms, torch.ones_like(rms), atol=1e-4, rtol=0)
    rms_1 = t["layers.1.self_attn.q"].pow(2).mean(-1).sqrt()
    assert not torch.allclose(rms_1, torch.ones_like(rms_1), atol=1e-2)


def test_without_rope_a_repeated_token_scores_the_same_everywhere(tiny_checkpoint):
    ours = load_model(tiny_checkpoint("llama-gqa-llama3")[0], device="cpu")
    ids = torch.full((1, 12), 7)
    for remove, constant in ((True, True), (False, False)):
        scores = trace(ours, ids, capture="*.scores", edits=Edits(remove_rope=remove))["layers.0.self_attn.scores"]
        visible = scores[0][:, torch.ones(12, 12, dtype=torch.bool).tril()]  # (Hq, T(T+1)/2) unmasked scores
        assert torch.allclose(visible, visible[:, :1].expand_as(visible), atol=1e-5) == constant


def test_rope_theta_edit_changes_frequencies_and_output(tiny_checkpoint):
    ours = load_model(tiny_checkpoint("qwen3-qknorm")[0], device="cpu")
    ids = random_ids(128)
    clean = trace(ours, ids, capture=["rope.*", "logits"])
    edited = trace(ours, ids, capture=["rope.*", "logits"], edits=Edits(rope_theta=100.0))
    expected = 1.0 / 100.0 ** (torch.arange(0, ours.config.head_dim, 2).float() / ours.config.head_dim)
    torch.testing.assert_close(edited["rope.inv_freq"], expected, **ATOL)
    assert torch.equal(edited["rope.inv_freq_unscaled"], clean["rope.inv_freq_unscaled"])
    assert not torch.allclose(edited["logits"], clean["logits"])


def test_zeroed_neurons_and_general_replacement(tiny_checkpoint):
    ours = load_model(tiny_checkpoint("qwen2-bias")[0], device="cpu")
    ids = random_ids(128)
    clean = trace(ours, ids)
    edited = trace(ours, ids, edits=Edits(zero_neurons={0: (3, 5)}))
    assert torch.all(edited["layers.0.mlp.hidden"][..., [3, 5]] == 0)
    assert torch.equal(edited["layers.0.mlp.gate"], clean["layers.0.mlp.gate"])
    assert not torch.allclose(edited["layers.0.mlp.out"], clean["layers.0.mlp.out"])

    replaced = trace(ours, ids, edits={"layers.1.resid_mid": torch.zeros_like})
    assert torch.all(replaced["layers.1.resid_mid"] == 0)
    assert torch.equal(replaced["layers.1.resid_pre"], clean["layers.1.resid_pre"])
    assert not torch.allclose(replaced["logits"], clean["logits"])


def test_a_trace_leaves_the_model_unchanged_and_plain_hooks_still_work(tiny_checkpoint):
    ours = load_model(tiny_checkpoint("qwen3-qknorm")[0], device="cpu")
    before = {k: v.clone() for k, v in ours.state_dict().items()}
    seen = []
    handle = ours.layers[0].mlp.down_proj.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    try:
        trace(ours, random_ids(128), edits=Edits(qk_norm_off=frozenset({0}), ablate_heads={1: (0,)}, rope_theta=5.0))
    finally:
        handle.remove()
    assert seen == [torch.Size([2, 24, 64])]
    assert all(torch.equal(before[k], v) for k, v in ours.state_dict().items())
    assert not ours._forward_hooks and not ours.layers[0].mlp.down_proj._forward_hooks


def test_concurrent_traces_match_serial_runs(tiny_checkpoint):
    ours = load_model(tiny_checkpoint("qwen3-qknorm")[0], device="cpu")
    jobs = [
        (random_ids(128, batch=1, tokens=5 + 3 * k, seed=k), edits)
        for k, edits in enumerate(
            [Edits(), Edits(qk_norm_off=frozenset({0, 1})), Edits(ablate_heads={0: (1, 2)}), Edits(remove_rope=True),
             Edits(rope_theta=50.0), Edits(zero_neurons={1: (0,)}), Edits(), Edits(ablation="mean", ablate_heads={1: (3,)})]
        )
    ]
    serial = [trace(ours, ids, edits=e) for ids, e in jobs]
    results = [None] * len(jobs)
    start = threading.Barrier(len(jobs))

    def run(k):
        start.wait()
        for _ in range(3):  # several rounds, so that the threads' forwards overlap
            results[k] = trace(ours, jobs[k][0], edits=jobs[k][1])

    threads = [threading.Thread(target=run, args=(k,)) for k in range(len(jobs))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for expected, got in zip(serial, results):
        assert expected.names() == got.names()
        for name in expected.names():
            assert torch.equal(expected[name], got[name]), name


def test_trace_of_a_generation_covers_prompt_and_continuation():
    ours = load_model("stories260K", device="cpu")
    t = explorer.trace_generation(ours, torch.tensor([[1, 403]]), 6, capture=["logits", "*.pattern"])
    assert t.prompt_length == 2 and t.input_ids.shape == (1, 8)
    assert t["logits"].shape[1] == 8 and t["layers.0.self_attn.pattern"].shape[-1] == 8
    greedy = t["logits"][0, 1:-1].argmax(-1)  # the continuation is the model's own greedy choice
    assert torch.equal(greedy, t.input_ids[0, 2:])


def test_a_saved_trace_reloads_to_the_same_tensors(tmp_path, tiny_checkpoint):
    ours = load_model(tiny_checkpoint("qwen3-qknorm")[0], device="cpu")
    t = trace(ours, random_ids(128, batch=1, tokens=7), edits=Edits(ablate_heads={0: (1,)}))
    t.save(tmp_path / "trace.safetensors")
    back = explorer.Trace.load(tmp_path / "trace.safetensors")
    assert back.names() == t.names() and back.tokens == t.tokens and back.config == t.config
    assert torch.equal(back.input_ids, t.input_ids)
    assert all(torch.equal(back[name], t[name]) for name in t.names())
    assert back.saved_edits == repr(t.edits)
    assert torch.equal(back.pattern_by_group(1), t.pattern_by_group(1))


def test_rope_scaling_edit_replaces_or_removes_the_models_scaling(tiny_checkpoint):
    ours = load_model(tiny_checkpoint("llama-gqa-llama3")[0], device="cpu")
    ids = random_ids(128, tokens=40)
    clean = trace(ours, ids, capture=["rope.*", "logits"])
    unscaled = trace(ours, ids, capture=["rope.*", "logits"], edits=Edits(rope_scaling=None))
    torch.testing.assert_close(unscaled["rope.inv_freq"], clean["rope.inv_freq_unscaled"], **ATOL)
    linear = trace(ours, ids, capture=["rope.inv_freq"], edits=Edits(rope_scaling={"rope_type": "linear", "factor": 4.0}))
    torch.testing.assert_close(linear["rope.inv_freq"], clean["rope.inv_freq_unscaled"] / 4, **ATOL)
    assert not torch.allclose(unscaled["logits"], clean["logits"])


@pytest.mark.parametrize("edits, words", [
    (Edits(ablate_heads={99: (0,)}), ["layer 99", "layers 0–1"]),
    (Edits(ablate_heads={0: (4,)}), ["query head 4", "0–3"]),
    (Edits(zero_neurons={1: (-1,)}), ["MLP neuron -1"]),
    (Edits(qk_norm_add=frozenset({2})), ["layer 2"]),
    (Edits(rope_scaling={"rope_type": "yarn", "factor": 4.0}), ["RoPE edit", "'yarn' is not supported"]),
    (Edits(rope_theta=0.0), ["RoPE edit", "rope_theta must be a positive number"]),
    (Edits(rope_scaling={"rope_type": "llama3", "factor": 8.0}), ["RoPE edit", "low_freq_factor"]),
], ids=["layer", "head", "neuron", "qk-norm-layer", "yarn", "theta-zero", "llama3-incomplete"])
def test_an_edit_the_model_cannot_take_is_refused_by_name(tiny_checkpoint, edits, words):
    model = load_model(tiny_checkpoint("llama-gqa-llama3")[0], device="cpu")  # 2 layers, 4 query heads
    with pytest.raises(ModelError) as info:
        trace(model, random_ids(model.config.vocab_size, batch=1, tokens=4), capture="logits", edits=edits)
    for word in words:
        assert word in str(info.value)

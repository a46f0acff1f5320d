"""Model page: config facts, parameter counts, KV-cache arithmetic, figures, and the page in AppTest."""

import base64
import re
from xml.etree import ElementTree

import numpy as np
import torch

from explorer.analysis import model_facts as facts
from explorer.figures import model as figures
from model import ModelConfig, load_model

from .apptest_helpers import array, chart_specs, open_page
from .conftest import BUNDLED


def unique_parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


# ---- analysis ----

def test_parameter_counts_of_the_bundled_model_by_hand():
    model = load_model("stories260K")
    counts = facts.parameter_counts(model)
    D, F, V, N, dh = 64, 172, 512, 5, 8
    assert counts == {
        "embedding": V * D,
        "attention q_proj": N * D * 8 * dh,
        "attention k_proj": N * D * 4 * dh,
        "attention v_proj": N * D * 4 * dh,
        "attention o_proj": N * 8 * dh * D,
        "MLP (gate, up, down)": N * 3 * D * F,
        "RMSNorm gains": (2 * N + 1) * D,
    }  # tied LM head: no entry of its own, and no QK-norm in a Llama
    assert sum(counts.values()) == unique_parameter_count(model) == 260_032


def test_parameter_counts_of_an_untied_qwen3_with_qk_norm(tiny_checkpoint):
    folder, _ = tiny_checkpoint("qwen3-qknorm")
    model = load_model(folder)
    counts = facts.parameter_counts(model)
    assert counts["QK-norm"] == 2 * 2 * 32  # 2 layers × (q_norm + k_norm) × head_dim
    assert counts["LM head (untied)"] == 128 * 64
    assert sum(counts.values()) == unique_parameter_count(model)


def test_kv_cache_bytes_is_the_formula():
    for layers, kv_heads, head_dim, tokens, bpv, batch in [(5, 4, 8, 512, 4, 1), (28, 8, 128, 40960, 2, 3),
                                                            (1, 1, 1, 1, 1, 1)]:
        assert facts.kv_cache_bytes(layers, kv_heads, head_dim, tokens, bpv, batch) == \
            2 * layers * kv_heads * head_dim * tokens * bpv * batch


def test_kv_cache_textbook_example():
    # 32 layers, head_dim 128, 4096 tokens in fp16: MHA with 32 KV heads, GQA with 8, MQA with 1.
    assert facts.kv_cache_bytes(32, 32, 128, 4096, 2) == 2_147_483_648 == 2 * 2**30
    assert facts.kv_cache_bytes(32, 8, 128, 4096, 2) == 536_870_912 == 2**30 // 2
    assert facts.kv_cache_bytes(32, 1, 128, 4096, 2) == 67_108_864 == 64 * 2**20
    assert [facts.format_bytes(n) for n in (2_147_483_648, 536_870_912, 67_108_864, 1536, 100)] == \
        ["2 GiB", "512 MiB", "64 MiB", "1.5 KiB", "100 B"]


def test_kv_cache_variants_compare_mha_gqa_mqa():
    config = ModelConfig.from_file(BUNDLED / "config.json")  # Hq 8, Hkv 4, 5 layers, head_dim 8
    rows = facts.kv_cache_variants(config, 512, 2)
    assert [r["kv_heads"] for r in rows] == [8, 4, 1]
    assert [r["this_model"] for r in rows] == [False, True, False]
    assert [r["bytes"] for r in rows] == [2 * 5 * h * 8 * 512 * 2 for h in (8, 4, 1)]
    assert rows[1]["label"] == "GQA: 4 KV heads (this model)" and rows[2]["label"] == "MQA: 1 KV head"
    mha = ModelConfig.from_dict({**config.raw, "num_key_value_heads": 8})
    assert [r["label"] for r in facts.kv_cache_variants(mha, 1, 1)] == ["MHA: 8 KV heads (this model)",
                                                                        "MQA: 1 KV head"]


def test_config_rows_and_diagram_labels_carry_the_numbers(tiny_checkpoint):
    config = ModelConfig.from_file(BUNDLED / "config.json")
    values = {r["setting"]: r["value"] for r in facts.config_rows(config)}
    assert values["head_dim (dh)"] == "8" and values["num_key_value_heads (Hkv)"] == "4"
    assert values["rope_scaling"] == "none" and values["tie_word_embeddings"] == "yes"
    assert values["rope_theta"] == "10,000" and values["QK-norm"] == "no" and values["biases"] == "none"
    labels = facts.diagram_labels(config)
    assert "8 query heads<br>4 KV heads" in labels["attention"] and "GQA" in labels["attention"]
    assert "512 × 64" in labels["embedding"] and "64 → 172 → 64" in labels["mlp"]
    assert "tied" in labels["lm_head"] and labels["repeat"].startswith("× 5")

    qwen3 = ModelConfig.from_file(tiny_checkpoint("qwen3-qknorm")[0] / "config.json")
    assert "QK-norm" in facts.diagram_labels(qwen3)["attention"]
    assert "own weights" in facts.diagram_labels(qwen3)["lm_head"]
    llama3 = ModelConfig.from_file(tiny_checkpoint("llama-gqa-llama3")[0] / "config.json")
    assert "llama3 ×8" in facts.diagram_labels(llama3)["attention"]
    assert "θ = 500,000" in facts.diagram_labels(llama3)["attention"]
    assert {r["setting"]: r["value"] for r in facts.config_rows(llama3)}["rope_scaling"].startswith("llama3 (")


def test_top_next_tokens_by_hand():
    ids, probs = facts.top_next_tokens(torch.tensor([0.0, np.log(3.0), np.log(6.0)]), 2)
    assert ids == [2, 1]
    np.testing.assert_allclose(probs, [0.6, 0.3], rtol=1e-6)  # 6/10, 3/10
    assert len(facts.top_next_tokens(torch.zeros(3), 10)[0]) == 3  # k beyond the vocabulary: all of it


# ---- figures ----

def test_block_diagram_is_svg_with_every_label():
    labels = facts.diagram_labels(ModelConfig.from_file(BUNDLED / "config.json"))
    svg = ElementTree.fromstring(figures.block_diagram(labels))  # well-formed XML, or this raises
    ns = "{http://www.w3.org/2000/svg}"
    lines = ["".join(span.itertext()) for span in svg.iter(f"{ns}tspan") if span.get("dy") is not None]
    for text in labels.values():
        for line in text.split("<br>"):
            assert re.sub(r"</?b>", "", line) in lines, line
    assert len(list(svg.iter(f"{ns}circle"))) == 2  # the two residual additions
    bold = [span.text for span in svg.iter(f"{ns}tspan") if span.get("font-weight") == "bold"]
    assert "Embedding" in bold and "Self-attention" in bold


def test_top_k_bar_keeps_repeated_tokens_apart_most_likely_on_top():
    fig = figures.top_k_bar(["␣the", "␣a", "␣the"], [0.5, 0.3, 0.1], position_token="␣cat")
    assert list(fig.data[0].y) == [0, 1, 2]
    assert list(fig.layout.yaxis.ticktext) == ["1. ␣the", "2. ␣a", "3. ␣the"]
    assert fig.layout.yaxis.autorange == "reversed"
    assert fig.layout.xaxis.title.text == "probability" and "␣cat" in fig.layout.title.text


def test_parameter_and_kv_bars():
    fig = figures.parameter_bar(["embedding", "MLP"], [300, 100])
    assert list(fig.data[0].text) == ["300 (75.0%)", "100 (25.0%)"] and fig.layout.yaxis.autorange == "reversed"
    assert "400" in fig.layout.title.text and "parameters" in fig.layout.xaxis.title.text
    fig = figures.kv_cache_bar(["MHA", "GQA"], [2048, 1024], ["2 KiB", "1 KiB"], [False, True], subtitle="x")
    assert list(fig.data[0].marker.color) == ["#adb5bd", "#4c6ef5"]
    assert "bytes" in fig.layout.yaxis.title.text


# ---- the page ----

def test_page_renders_and_controls_change_it():
    at = open_page("pages/model.py")
    assert not at.exception and not at.error
    assert "residual stream" in diagram_svg(at)
    specs = chart_specs(at)
    assert len(specs) == 3  # parameters, next token, KV cache
    assert len(specs[1]["data"][0]["x"]) == 10  # default k
    tokens_table = at.dataframe[1].value
    assert list(tokens_table.columns) == ["token", "id"] and tokens_table["id"].iloc[0] == 1  # BOS id 1 first
    chips = next(e.proto.body for e in at.get("html") if "inline-flex" in e.proto.body)
    assert chips.count("inline-flex") == len(tokens_table) and "&lt;s&gt;" in chips  # every token, escaped

    at.slider(key="view.model.top_k").set_value(5)
    at.run()
    assert not at.exception and len(chart_specs(at)[1]["data"][0]["x"]) == 5

    kv = array(chart_specs(at)[2]["data"][0]["y"])
    assert list(kv) == [2 * 5 * h * 8 * 512 * 4 for h in (8, 4, 1)]  # float32, the full 512-token context
    at.selectbox(key="view.model.kv_dtype").set_value("int8")
    at.run()
    assert list(array(chart_specs(at)[2]["data"][0]["y"])) == [int(b) // 4 for b in kv]


def diagram_svg(at) -> str:
    """The block diagram's SVG markup, from the page's one image (a data URL in the markdown)."""
    (url,) = [m for md in at.markdown for m in re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', md.value)]
    return base64.b64decode(url).decode()


def test_page_for_qwen3(tiny_folder):
    at = open_page("pages/model.py", tiny_folder("qwen3-qknorm"))
    assert not at.exception and not at.error
    assert "QK-norm on q, k" in diagram_svg(at) and "own weights" in diagram_svg(at)
    assert "QK-norm" in chart_specs(at)[0]["data"][0]["y"] and "LM head (untied)" in chart_specs(at)[0]["data"][0]["y"]

"""Direct logit attribution: the parts add up to the logit, heads and neurons add up to their layer, and the page."""

import re

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from explorer.attribution import (check_request, direct_logit_attribution, single_token, stream_sum_error,
                                  stream_sum_verdict, top_neurons)
from explorer.prompt_trace import PromptTrace
from model import ModelError, load_model, load_tokenizer
from tests.conftest import random_ids

from .apptest_helpers import APP, chart_titles, open_page


def open_page_with_link(page: str, **params) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.switch_page(f"pages/{page}.py")
    for name, value in params.items():
        at.query_params[name] = value
    return at.run()

PROMPT = "Once upon a time, there was a little girl named Lily. She"


def attributed(model, ids, position=-1, baseline_offset=None):
    t = PromptTrace(model, ids)
    position = position % len(ids)
    target = int(t.logits_at([position])[0, 0].argmax())
    baseline = None if baseline_offset is None else (target + baseline_offset) % model.config.vocab_size
    return t, direct_logit_attribution(t, position, target, baseline)


@pytest.mark.parametrize("name", ["stories260K", "pair-llama", "pair-qwen3"])
def test_the_parts_add_up_to_the_logit_for_every_bundled_model(name):
    model = load_model(name)
    ids = load_tokenizer(name).encode(PROMPT)
    for position, offset in ((-1, None), (-1, 7), (3, None)):
        t, a = attributed(model, ids, position, offset)
        assert a.total == pytest.approx(a.logit, abs=1e-4)
        # The logit computed by hand from the frozen scale: g ⊙ stream · s · W_U row.
        stream = t[f"layers.{model.config.num_hidden_layers - 1}.resid_post"][0, a.position]
        unembed = model.lm_head.weight[a.target] - (model.lm_head.weight[a.baseline] if a.baseline is not None else 0)
        assert float(a.scale * stream @ (model.norm.weight * unembed)) == pytest.approx(a.logit, abs=1e-4)
        assert a.running()[-1] == pytest.approx(a.total)


@pytest.mark.parametrize("variant", ["qwen3-qknorm", "qwen2-bias"])
def test_the_parts_add_up_for_a_random_qwen_with_qk_norm_or_biases(tiny_folder, variant):
    model = load_model(tiny_folder(variant))
    ids = random_ids(model.config.vocab_size, batch=1, tokens=12, seed=3)[0].tolist()
    t, a = attributed(model, ids, -1, 5)
    assert a.total == pytest.approx(a.logit, abs=1e-4)


def test_heads_add_up_to_their_layers_attention_and_neurons_to_its_mlp():
    model = load_model("stories260K")
    ids = load_tokenizer("stories260K").encode(PROMPT)
    t, a = attributed(model, ids)
    for layer in range(model.config.num_hidden_layers):
        attn_out = t[f"layers.{layer}.self_attn.out"][0, a.position]
        unembed = model.norm.weight * model.lm_head.weight[a.target]
        assert a.attn[layer] == pytest.approx(float(a.scale * attn_out @ unembed), abs=1e-5)
        every, contributions = top_neurons(t, a, layer, k=model.config.intermediate_size)
        assert sorted(every) == list(range(model.config.intermediate_size))
        assert contributions.sum() == pytest.approx(a.mlp[layer], abs=1e-4)  # no bias: the neurons are all of it
        assert list(np.abs(contributions)) == sorted(np.abs(contributions), reverse=True)


def test_bad_requests_say_what_is_wrong():
    model = load_model("stories260K")
    tokenizer = load_tokenizer("stories260K")
    t = PromptTrace(model, tokenizer.encode(PROMPT))
    with pytest.raises(ModelError, match="outside the prompt"):
        check_request(t, len(t.tokens), 5)
    with pytest.raises(ModelError, match="not in this model's vocabulary"):
        direct_logit_attribution(t, 0, model.config.vocab_size)
    with pytest.raises(ModelError, match="two different tokens"):
        direct_logit_attribution(t, 0, 5, 5)
    with pytest.raises(ModelError, match="not one"):
        single_token(tokenizer, " elephantine hippopotamus")
    assert tokenizer.tokens([single_token(tokenizer, " she")]) == ["␣she"]


def test_the_page_explains_the_top_prediction_then_a_difference_then_a_typed_token():
    at = open_page("pages/attribution.py")
    assert not at.exception and not at.error
    titles = chart_titles(at)
    assert len(titles) == 4 and titles[0].startswith("How logit(") and titles[3].startswith("Layer 4: the 20")
    summary = next(m.value for m in at.markdown if "add up to" in m.value)
    total, logit = (float(x) for x in re.findall(r"\*\*(-?[\d.]+)\*\*", summary)[:2])
    assert total == pytest.approx(logit, abs=1e-3)
    at.selectbox(key="view.attribution.minus").set_value("top 2").run()
    assert not at.exception and " − logit(" in chart_titles(at)[0]
    at.selectbox(key="view.attribution.target").set_value("another token…").run()
    assert not at.exception and "logit(␣she)" in chart_titles(at)[0]
    at.text_input(key="view.attribution.target_text").set_value(" elephantine hippopotamus").run()
    assert not at.exception and "not one" in at.error[0].value
    linked = open_page_with_link("attribution", minus="top 3", position="4")
    assert linked.selectbox(key="view.attribution.minus").value == "top 3"
    assert linked.selectbox(key="view.attribution.position").value == 4


@pytest.mark.parametrize("name", ["stories260K", "pair-qwen3"])
def test_the_stream_is_the_sum_of_its_parts(name):
    model = load_model(name)
    t = PromptTrace(model, load_tokenizer(name).encode(PROMPT))
    error, size = stream_sum_error(t, len(t.tokens) - 1)
    assert error < 1e-5 * size
    assert "**the claim holds**" in stream_sum_verdict(error, size, 11)
    assert "more than rounding" in stream_sum_verdict(0.5, size, 11)


def test_the_residual_stream_lesson_measures_and_splits_the_prediction():
    at = open_page("pages/lesson_residual.py")
    assert not at.exception and not at.error
    assert any("**the claim holds**" in m.value for m in at.markdown)
    titles = chart_titles(at)
    assert len(titles) == 2 and titles[0].startswith("How logit(") and titles[1].endswith("after each layer (the "
                                                                                          "final norm's scale held fixed)")

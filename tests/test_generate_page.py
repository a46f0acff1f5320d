"""Generate page: the continuation is the model's, is kept for every page, only re-runs on the button, and clears."""

import json
from html import escape

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from explorer.analysis.logit_lens import MAX_POSITIONS_PER_VIEW
from model import load_model, load_tokenizer

from .apptest_helpers import APP, array, chart_specs, open_page


def greedy_reference(prompt: str, max_new_tokens: int) -> list[int]:
    ids = load_tokenizer("stories260K").encode(prompt)
    return load_model("stories260K").generate(torch.tensor([ids]), max_new_tokens)[0].tolist()


def test_generate_then_every_page_sees_the_continuation_then_clear():
    at = open_page("pages/generate.py")
    assert not at.exception and not at.error
    assert at.number_input(key="view.generate.max_new_tokens").value == 40
    assert at.button(key="clear_generated").disabled  # nothing to clear yet

    at.button(key="generate").click()
    at.run()
    assert not at.exception and not at.error
    generated = at.session_state["generated"]
    prompt = at.session_state["prompt"]
    assert generated["prompt"] == prompt and generated["choice"].source == "stories260K"
    assert generated["ids"] == greedy_reference(prompt, 40)  # temperature 0: the greedy continuation
    (shown,) = html_bodies(at)
    assert shown.startswith('<div') and "<mark" in shown and escape(prompt[:20]) in shown
    assert any(f"{len(generated['ids'])} tokens" in c.value for c in at.caption)

    # A widget change re-runs the page but not the model: the continuation stays the greedy one.
    at.slider(key="view.generate.temperature").set_value(1.5)
    at.run()
    assert at.session_state["generated"]["ids"] == generated["ids"]

    at.switch_page("pages/logit_lens.py")
    at.run()
    assert not at.exception
    # Prompt + continuation: every position can be followed, and the heatmap shows a window of the longer sequence.
    assert len(at.selectbox(key="view.logit_lens.position").options) == len(generated["ids"])
    assert at.slider(key="view.logit_lens.first_position").proto.max == len(generated["ids"]) - MAX_POSITIONS_PER_VIEW
    at.slider(key="view.logit_lens.first_position").set_value(20)
    at.run()
    heat = chart_specs(at)[0]["data"][0]
    assert array(heat["z"]).shape[1] == MAX_POSITIONS_PER_VIEW and heat["customdata"][0][0][-1].startswith("after layer 0, "
                                                                                                  "position 20 (")

    at.switch_page("pages/generate.py")
    at.run()
    at.button(key="clear_generated").click()
    at.run()
    assert not at.exception and "generated" not in at.session_state
    assert not html_bodies(at)


def html_bodies(at) -> list[str]:
    """The HTML of the page's st.html elements (the prompt and continuation box)."""
    return [element.proto.body for element in at.get("html")]


def test_a_prompt_with_markdown_shows_as_typed():
    at = open_page("pages/generate.py")
    at.text_area(key="prompt").set_value("See [click me](https://example.com) ![t](http://example.com/x.png) now").run()
    at.number_input(key="view.generate.max_new_tokens").set_value(3)
    at.button(key="generate").click().run()
    assert not at.exception and not at.error
    (shown,) = html_bodies(at)
    assert "[click me](https://example.com)" in shown and "<a " not in shown and "<img" not in shown


def test_sampling_is_repeatable_with_a_seed_and_capped_by_the_context():
    at = open_page("pages/generate.py")
    at.slider(key="view.generate.temperature").set_value(1.0)
    at.run()  # sampling settings are disabled while the temperature is 0
    at.number_input(key="view.generate.seed").set_value(7)
    at.number_input(key="view.generate.max_new_tokens").set_value(12)
    at.button(key="generate").click()
    at.run()
    first = at.session_state["generated"]["ids"]
    at.button(key="generate").click()
    at.run()
    assert not at.exception and at.session_state["generated"]["ids"] == first

    # A prompt that leaves only a few tokens of the 512-token context: the kept setting (12) is cut to fit.
    tokenizer = load_tokenizer("stories260K")
    long_prompt = " ".join(["the"] * 2000)
    long_prompt = tokenizer.decode(tokenizer.encode(long_prompt)[:507])
    length = len(tokenizer.encode(long_prompt))
    at.text_area(key="prompt").set_value(long_prompt).run()
    assert not at.exception and not at.error
    assert 0 < 512 - length < 12 and at.number_input(key="view.generate.max_new_tokens").value == 512 - length


def test_generate_with_a_llama3_scaled_checkpoint(tiny_folder):
    folder = tiny_folder("llama-gqa-llama3")
    at = open_page("pages/generate.py", folder)
    at.number_input(key="view.generate.max_new_tokens").set_value(5)
    at.button(key="generate").click()
    at.run()
    assert not at.exception and not at.error
    generated = at.session_state["generated"]
    assert generated["choice"].source == str(folder)
    assert 0 < len(generated["ids"]) - len(load_tokenizer("stories260K").encode(generated["prompt"])) <= 5


def test_each_step_and_the_kv_cache_are_shown_and_other_pages_mark_where_the_continuation_begins():
    at = open_page("pages/generate.py")
    at.number_input(key="view.generate.max_new_tokens").set_value(6)
    at.button(key="generate").click().run()
    assert not at.exception and not at.error
    ids, prompt_length = at.session_state["generated"]["ids"], len(load_tokenizer("stories260K").encode(
        at.session_state["prompt"]))
    steps, kv = chart_specs(at)
    bars, alternatives = steps["data"]
    assert len(bars["y"]) == len(ids) - prompt_length == 6 and bars["y"][0].startswith(f"{prompt_length}: ")
    # Greedy: every token was the model's most likely, outlined and in bold in the first column.
    assert [(s["x0"], s["y0"]) for s in steps["layout"]["shapes"]] == [(-0.5, i - 0.5) for i in range(6)]
    assert all(row[0].startswith("<b>") for row in alternatives["text"])
    assert any("at **6 of 6** steps (greedy decoding always does)" in m.value for m in at.markdown)
    prompt_part, generated_part = kv["data"]
    assert array(generated_part["y"])[0] == 0 and np.all(np.diff(array(generated_part["y"])) > 0)

    at.switch_page("pages/attention.py").run()
    assert not at.exception
    lines = [s for spec in chart_specs(at) for s in spec["layout"].get("shapes", []) if s["line"].get("dash") == "dash"]
    assert lines and all(s["x0"] == s["x1"] or s["y0"] == s["y1"] for s in lines)


def test_a_link_carries_the_continuation_as_the_settings_that_reproduce_it():
    at = open_page("pages/generate.py")
    at.slider(key="view.generate.temperature").set_value(0.8).run()
    at.number_input(key="view.generate.seed").set_value(11)
    at.number_input(key="view.generate.max_new_tokens").set_value(9)
    at.button(key="generate").click().run()
    generated = at.session_state["generated"]["ids"]
    at.switch_page("pages/attention.py").run()  # a link made on another page carries it too
    address = dict(at.query_params)
    assert json.loads(address["continuation"]) == {"n": 9, "temperature": 0.8, "top_k": 0, "top_p": 1.0, "seed": 11}

    fresh = AppTest.from_file(str(APP), default_timeout=120)
    fresh.switch_page("pages/attention.py")
    for name, value in address.items():
        fresh.query_params[name] = value
    fresh.run()
    assert not fresh.exception and not fresh.error
    assert fresh.session_state["generated"]["ids"] == generated  # generated again, the same tokens


@pytest.mark.parametrize("value", ['{"n": 9}', '{"n": 0, "temperature": 0, "top_k": 0, "top_p": 1, "seed": 0}',
                                   '{"n": true, "temperature": 0, "top_k": 0, "top_p": 1, "seed": 0}', "[1,",
                                   '{"n": 5, "temperature": -1, "top_k": 0, "top_p": 1, "seed": 0}'])
def test_a_link_with_bad_continuation_settings_opens_without_one(value):
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.switch_page("pages/attention.py")
    at.query_params["continuation"] = value
    at.run()
    assert not at.exception and "generated" not in at.session_state and not at.error


def test_a_long_continuation_is_read_a_window_of_steps_at_a_time():
    at = open_page("pages/generate.py")
    at.number_input(key="view.generate.max_new_tokens").set_value(100).run()
    at.button(key="generate").click().run()
    assert not at.exception and not at.error
    steps = chart_specs(at)[0]
    assert len(steps["data"][0]["y"]) == 64
    generated = len(at.session_state["generated"]["ids"]) - len(load_tokenizer("stories260K").encode(
        at.session_state["prompt"]))
    at.slider(key="view.generate.first_step").set_value(generated - 64).run()
    assert not at.exception and chart_specs(at)[0]["data"][0]["y"][-1].startswith(
        f"{len(at.session_state['generated']['ids']) - 1}: ")

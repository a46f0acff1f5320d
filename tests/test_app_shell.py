"""The app around the pages: shared links, presenter mode, exports, and clear errors for bad sidebar input."""

import io
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from streamlit.testing.v1 import AppTest

from explorer import __version__
from explorer.app_state import OTHER_SOURCE, as_text
from explorer.export import HEADER_LINES, figure_csv, figure_html
from explorer.figures.common import token_heatmap

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def app(page: str | None = None, **params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    if page:
        at.switch_page(page)
    for name, value in params.items():
        at.query_params[name] = value
    return at.run()


def test_a_shared_link_opens_the_app_in_the_stated_state():
    at = app("pages/attention.py", model="stories260K", prompt="The cat sat on the mat.", layer="3", head="6")
    assert not at.exception and not at.error
    assert at.session_state["prompt"] == "The cat sat on the mat."
    assert at.slider(key="view.attention.layer").value == 3
    assert at.selectbox(key="view.attention.head").value == 6
    # and the address keeps following the view
    at.slider(key="view.attention.layer").set_value(1).run()
    assert at.query_params["layer"] == ["1"] or at.query_params["layer"] == "1"


def test_a_link_to_a_model_that_is_not_bundled_fills_the_custom_source():
    at = app(model="/no/such/folder")
    assert at.session_state["model_choice"] == "Hub repo id or local folder…"
    assert "Could not load" in at.error[0].value and "/no/such/folder" in at.error[0].value


@pytest.mark.parametrize("page, controls", [
    ("attention", {"layer": 2, "head": 5, "values": "scores (before softmax)"}),
    ("norms", {"k": 6.5, "log": True}),
    ("rope", {"layer": 1, "head": 3, "token": 4, "pairs": [1, 2]}),
    ("swiglu", {"layer": 2, "threshold": 0.1, "token": 3, "k": 7, "log": True}),
    ("generate", {"max_new_tokens": 12, "temperature": 0.35000000000000003, "top_k": 5, "top_p": 0.9, "seed": 42}),
    ("model", {"top_k": 17, "kv_tokens": 1000, "kv_dtype": "int8", "kv_batch": 3}),
    ("compare", {"a": OTHER_SOURCE, "a_custom": "stories260K", "layer": 1}),
    ("lesson_gqa", {"layer": 2, "run": True}),
    ("lesson_swiglu", {"layer": 1, "run": True, "ablated_layer": 3}),
    ("lesson_qk_norm", {"run": True}),
    ("lab", {"lr": 0.03, "steps": 120}),
    ("lesson_kv_cache", {"layers": 28, "kv_heads": 2, "tokens": 8192, "dtype": "bfloat16"}),
])
def test_a_link_carries_every_guarded_control_of_the_page(page, controls):
    """Set the controls, copy the address, open it in a fresh session: the same values."""
    at = app(f"pages/{page}.py")
    for name, value in controls.items():
        at.session_state[f"view.{page}.{name}"] = value
    at.run()
    address = dict(at.query_params)
    assert not at.exception and all(name in address for name in controls), address
    fresh = app(f"pages/{page}.py", **address)
    assert not fresh.exception
    # a float slider's binary fraction (0.35000000000000003) comes back as its notch
    assert {name: fresh.session_state[f"view.{page}.{name}"] for name in controls} == {
        name: pytest.approx(value) if isinstance(value, float) else value for name, value in controls.items()}


@pytest.mark.parametrize("name, value", [("layer", "²"), ("token", "¹"), ("head", "-1"), ("layer", "99999"),
                                         ("values", "[1,2"), ("head", '"x"'), ("head", "true"), ("head", "3.0"),
                                         ("top_k", "1e999"), ("top_k", "[{}]"), ("pairs", "[{}]"), ("pairs", "[true]"),
                                         ("layer", '{"a": 1}')])
def test_a_link_with_a_bad_view_value_opens_the_page_at_its_default(name, value):
    for page in ("attention", "model", "rope"):
        at = app(f"pages/{page}.py", **{name: value})
        assert not at.exception and not at.error
        if f"view.{page}.{name}" in at.session_state:  # the page has this control: at its default, in the address too
            assert at.query_params[name] != value


def test_markdown_in_a_linked_model_name_stays_text_in_the_error():
    at = app(model="[Sign in again](https://evil.example/login) ![t](http://evil.example/x.png)")
    shown = at.error[0].value
    assert "Could not load" in shown
    assert "](" not in shown  # every link bracket is escaped: "\\]\\(", which Markdown shows as "]("
    assert "\\[Sign in again\\]\\(https\u200b\\://evil" in shown and "\\!\\[t\\]" in shown


def test_as_text_escapes_every_markdown_character():
    assert as_text("a_b *c* [d](e) `f` $g$ :red[h] <i> #j") == (
        "a\\_b \\*c\\* \\[d\\]\\(e\\) \\`f\\` \\$g\\$ \\:red\\[h\\] \\<i\\> \\#j")
    assert as_text("see https://x.org or www.x.org") == "see https\u200b\\://x\\.org or www\u200b\\.x\\.org"


def test_presenter_mode_hides_the_sidebar_and_keeps_the_prompt():
    at = app(prompt="Tom had a red ball.")
    at.toggle(key="presenter").set_value(True).run()
    assert not at.exception
    assert at.session_state["prompt"] == "Tom had a red ball."
    # The sidebar is hidden by style, its controls still drawn so that they keep their values in the browser.
    assert any("stSidebar'], header" in element.proto.body for element in at.get("html"))
    assert at.sidebar.text_area(key="prompt").value == "Tom had a red ball."
    assert at.get("plotly_chart")
    assert at.query_params["presenter"] == "1"  # in the address: a shared link opens in presenter mode
    linked = app(**dict(at.query_params))
    assert linked.session_state["presenter"] and linked.sidebar.text_area(key="prompt").value == "Tom had a red ball."
    at.button(key="presenter_exit").click().run()
    assert not at.toggle(key="presenter").value and "presenter" not in at.query_params
    assert not any("stSidebar'], header" in element.proto.body for element in at.get("html"))  # the style is gone
    assert at.sidebar.text_area(key="prompt").value == "Tom had a red ball."


def test_bad_prompts_give_errors_not_tracebacks():
    at = app()
    at.sidebar.text_area(key="prompt").set_value("   ").run()
    assert not at.exception and "empty" in at.error[0].value
    at.sidebar.text_area(key="prompt").set_value("word " * 600).run()  # beyond stories260K's 512 tokens
    assert not at.exception and "context" in at.error[0].value


def test_figure_csv_is_tidy_one_cell_a_row_its_tokens_in_columns_named_after_the_axes_under_a_header():
    fig = token_heatmap(np.array([[1.0, np.nan], [0.25, 0.75]]), ["<s>", "cat"], ["<s>", "cat"],
                        value_name="attention weight", title="Layer 0, <b>head 1</b>")
    text = figure_csv(fig, model="stories260K", text='She said "hi"\nthen left')
    assert text.splitlines()[:HEADER_LINES] == [
        "# model: stories260K", '# text: "She said \\"hi\\"\\nthen left"',
        f'# chart: "Layer 0, head 1", Modern Blocks Explorer {__version__}']
    table = pd.read_csv(io.StringIO(text), skiprows=HEADER_LINES)
    assert list(table.columns) == ["query_pos", "query_token", "key_pos", "key_token", "attention_weight"]
    assert table.query_pos.tolist() == [0, 0, 1, 1] and table.key_pos.tolist() == [0, 1, 0, 1]  # row by row
    assert table.attention_weight.tolist()[2] == 0.25 and np.isnan(table.attention_weight[1])  # masked: blank
    assert set(table.key_token) == {"<s>", "cat"}  # unescaped again for the spreadsheet


def test_figure_csv_of_bars_and_standalone_html():
    fig = go.Figure([go.Bar(x=["a", "b"], y=[1, 2], name="bars"), go.Bar(x=["a"], y=[3], name="more")])
    fig.update_xaxes(title_text="letter")
    assert figure_csv(fig).splitlines()[HEADER_LINES:] == ["series,letter,y", "bars,a,1", "bars,b,2", "more,a,3"]
    page = figure_html(fig)
    assert "<html>" in page and len(page) > 1_000_000  # plotly.js itself is inlined: it opens offline
    assert '<script src="https://cdn.plot.ly' not in page


def test_an_uncaught_error_is_one_plain_sentence_without_a_traceback():
    def page():  # AppTest runs this function's body as a script of its own
        from app import explain_script_error
        from model import ModelError

        explain_script_error(KeyError("/srv/secret/path"))
        explain_script_error(ModelError("The prompt is empty: type some text in the sidebar."))

    at = AppTest.from_function(page).run()
    unexpected, model_error = (e.value for e in at.error)
    assert "Something went wrong on this page (KeyError)" in unexpected and "/srv" not in unexpected
    assert model_error == "The prompt is empty\\: type some text in the sidebar\\."


def chart_keys(at) -> list[str]:
    return [chart.key for chart in at.get("plotly_chart")]


def test_presenter_mode_shows_one_figure_at_a_time_and_steps_through_pages():
    at = app("pages/attention.py", presenter="1")
    assert not at.exception and len(at.get("plotly_chart")) == 1
    assert at.subheader[0].value == "Figure 1 of 5"
    seen = [chart_keys(at)]
    for _ in range(4):
        at.button(key="presenter_next").click().run()
        seen.append(chart_keys(at))
    assert at.subheader[0].value == "Figure 5 of 5" and len({tuple(keys) for keys in seen}) == 5
    at.button(key="presenter_next").click().run()  # past the last figure: the next page, at its first
    assert not at.exception and at.title[0].value.startswith("RoPE") and at.subheader[0].value.startswith("Figure 1 of ")
    at.button(key="presenter_previous").click().run()  # and back: the previous page, at its last
    assert at.title[0].value == "Attention" and at.subheader[0].value == "Figure 5 of 5"
    assert at.session_state["presenter"] and len(at.get("plotly_chart")) == 1


def test_presenter_mode_grows_every_font_in_a_figure():
    from explorer.figures.attention import head_grid
    from explorer.presenter import scale_fonts

    fig = head_grid(np.random.default_rng(0).random((2, 2, 4, 4)), ["a", "b", "c", "d"], title="t")
    before = [a.font.size for a in fig.layout.annotations]
    scale_fonts(fig)
    assert fig.layout.font.size == 20 and fig.layout.title.font.size == 26 and fig.layout.height >= 720
    assert [a.font.size for a in fig.layout.annotations] == [round(size * 1.6) for size in before]

"""Prompts too long to hold a layer's whole attention: the pages narrow what they capture instead of refusing."""

import numpy as np
import pytest
import torch

from explorer import serving, trace
from explorer.analysis import rope as rope_analysis
from explorer.prompt_trace import PromptTrace, TraceCache, group_bytes
from model import load_model

from .apptest_helpers import chart_specs, open_page
from .conftest import BUNDLED

LONG_PROMPT = " ".join(["Once upon a time, there was a little girl named Lily. She loved to play outside."] * 4)


@pytest.fixture
def small_budget(monkeypatch):
    """A server budget that holds the bundled model's base trace of LONG_PROMPT but not one layer's matrices."""
    from model import load_tokenizer

    config = load_model(str(BUNDLED)).config
    T = len(load_tokenizer(str(BUNDLED)).encode(LONG_PROMPT))
    budget = 4 * group_bytes(config, T, matrices=True) - 1
    monkeypatch.setattr(serving, "TRACE_BUDGET_BYTES", budget)
    monkeypatch.setattr(serving, "TRACES", TraceCache(budget))
    return T


@pytest.mark.parametrize("page", ["attention", "rope", "lesson_gqa"])
def test_attention_views_show_a_window_of_queries(small_budget, page):
    at = open_page(f"pages/{page}.py")
    at.text_area(key="prompt").set_value(LONG_PROMPT).run()
    assert not at.exception and not at.error
    key = {"attention": "view.attention.first_query", "rope": "view.rope.first_query",
           "lesson_gqa": "view.lesson_gqa.first_query"}[page]
    window = at.slider(key=key)
    assert window.value == window.proto.max > 0  # the last queries first
    assert any("queries at a time" in i.value for i in at.info)
    window.set_value(0).run()
    assert not at.exception and not at.error and chart_specs(at)
    if page == "attention":
        assert any("Shorten the prompt" in i.value for i in at.info)  # the all-layer summaries, said plainly


def test_scores_by_distance_samples_queries_of_a_long_prompt(monkeypatch):
    model = load_model(str(BUNDLED))
    ids = torch.arange(3, 43)[None]
    t = trace(model, ids)
    full = rope_analysis.scores_by_distance(t, 1, 2)
    monkeypatch.setattr(rope_analysis, "MAX_QUERY_ROWS", 8)
    sampled = rope_analysis.scores_by_distance(t, 1, 2, include=17)
    assert set(np.unique(sampled.query)) >= {0, 17, 39} and len(np.unique(sampled.query)) <= 9
    index = {(m, n): s for m, n, s in zip(full.query, full.key, full.score, strict=True)}
    assert all(np.isclose(index[m, n], s) for m, n, s in zip(sampled.query, sampled.key, sampled.score, strict=True))
    assert (sampled.key <= sampled.query).all()


def test_a_window_of_the_rope_pattern_matches_the_whole(small_budget):
    model = load_model(str(BUNDLED))
    ids = list(range(3, 3 + small_budget))
    whole = rope_analysis.causal_pattern(trace(model, torch.tensor([ids])), 2, 1)
    lazy = PromptTrace(model, ids, budget_bytes=serving.TRACE_BUDGET_BYTES)
    window = rope_analysis.causal_pattern(lazy, 2, 1, rows=(10, 20))
    # The fused path fed this layer (its input differs from the explicit one in float32 rounding); NaN where NaN.
    np.testing.assert_allclose(window, whole[10:20, :20], atol=1e-5)

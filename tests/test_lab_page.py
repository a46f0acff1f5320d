"""Stability lab: run summaries and charts on hand-made records, and the page training both models in AppTest."""

import math

import numpy as np
import pytest

import training.corpus
from explorer.analysis import lab as analysis
from explorer.figures import lab as figures
from training.corpus import CORPUS_FILE

from .apptest_helpers import array, chart_specs, open_page

NAN, INF = float("nan"), float("inf")


def records(losses: list[float], logits: list[float | None]) -> list[dict]:
    return [{"step": i, "loss": loss, "max_logit": logit} for i, (loss, logit) in enumerate(zip(losses, logits))]


STABLE = records([6.2, 5.0, 4.1, 3.9], [2.0, 3.5, 3.0, 3.2])
DIVERGED = records([6.2, 5.5, 40.0, NAN], [2.0, 80.0, 900.0, INF])


# ---- summaries ----

def test_run_summary_by_hand():
    assert analysis.run_summary(STABLE) == {"steps_run": 4, "first_loss": 6.2, "final_loss": 3.9, "lowest_loss": 3.9,
                                           "diverged_at": None, "peak_logit": 3.5, "peak_logit_step": 1}
    s = analysis.run_summary(DIVERGED)
    assert (s["diverged_at"], s["final_loss"], s["lowest_loss"]) == (3, 40.0, 5.5)  # last finite loss
    assert (s["peak_logit"], s["peak_logit_step"]) == (900.0, 2)  # the infinite logit is not a peak to print
    unprobed = analysis.run_summary(records([6.0, 5.0], [None, None]))
    assert unprobed["peak_logit"] is None and unprobed["diverged_at"] is None


def test_summary_rows_and_sentences_follow_the_numbers():
    summaries = {"Llama": analysis.run_summary(DIVERGED), "Qwen3": analysis.run_summary(STABLE)}
    rows = analysis.summary_rows(summaries)
    assert [r["model"] for r in rows] == ["Llama", "Qwen3"]
    assert rows[0]["loss became NaN/∞"] == "at step 3" and rows[1]["loss became NaN/∞"] == "no"
    assert rows[0]["peak attention logit"] == "900 (step 2)" and rows[1]["final loss"] == "3.9"
    text = analysis.what_happened(summaries, 4)
    assert text[0].startswith("**Llama** diverged") and "step 3" in text[0]
    assert text[1].startswith("**Qwen3** trained all 4 steps") and "6.2 to 3.9" in text[1]
    assert "Llama was 257× that of Qwen3" in text[2]  # 900 / 3.5
    assert len(text) == 3  # no final-loss comparison when one of them diverged

    flat = records([6.2, 6.3, 6.25], [1.0, 1.0, 1.0])
    text = analysis.what_happened({"Llama": analysis.run_summary(flat), "Qwen3": analysis.run_summary(STABLE)}, 3)
    assert "did not learn" in text[0]
    assert text[-1] == "Neither diverged; Qwen3 ended with the lower loss, by 2.35 nats per token."  # 6.25 - 3.9


# ---- figures ----

def test_charts_draw_one_line_per_model_over_the_whole_run():
    runs = {"Llama": DIVERGED, "Qwen3": STABLE}
    fig = figures.logit_chart(runs, total_steps=10)
    assert [t.name for t in fig.data] == ["Llama", "Qwen3"]
    assert fig.data[0].line.color != fig.data[1].line.color
    assert list(fig.data[1].x) == [0, 1, 2, 3] and list(fig.data[1].y) == [2.0, 3.5, 3.0, 3.2]
    assert math.isnan(fig.data[0].y[3])  # infinity is a gap, not a point
    assert list(fig.layout.xaxis.range) == [0, 9]  # the whole run from the start: live redraws do not rescale
    assert fig.layout.yaxis.type == "log" and "q·k" in fig.layout.yaxis.title.text
    assert fig.layout.xaxis.title.text == "training step" and "attention logit" in fig.layout.title.text
    # The diverged run is marked where its loss became NaN, in its own colour.
    (line,) = fig.layout.shapes
    assert (line.x0, line.line.color) == (3, fig.data[0].line.color)
    assert fig.layout.annotations[0].text == "Llama: loss NaN/∞ at step 3"

    loss = figures.loss_chart(runs, total_steps=10)
    assert "loss" in loss.layout.yaxis.title.text and "nats" in loss.layout.yaxis.title.text
    np.testing.assert_array_equal(loss.data[0].y[:3], [6.2, 5.5, 40.0])
    assert loss.layout.yaxis.type == "log"  # 40 > 3 × 6.2: a spike that would flatten a linear axis
    assert figures.loss_chart({"Qwen3": STABLE}, total_steps=10).layout.yaxis.type == "linear"


def test_chart_skips_unprobed_steps_and_empty_runs():
    fig = figures.logit_chart({"Llama": records([6.0, 5.0, 4.0], [1.0, None, 2.0]), "Qwen3": []}, total_steps=3)
    assert list(fig.data[0].x) == [0, 2] and len(fig.data[1].x) == 0
    assert not fig.layout.shapes


# ---- the page ----

needs_corpus = pytest.mark.skipif(not CORPUS_FILE.is_file(), reason="made by `python -m training.train_pair`")


@needs_corpus
def test_page_trains_only_on_the_button_and_keeps_its_results():
    at = open_page("pages/lab.py")
    assert not at.exception and not at.error
    assert not at.get("plotly_chart") and at.info  # nothing trained yet
    assert at.select_slider(key="view.lab.lr").value == 0.1

    at.slider(key="view.lab.steps").set_value(3)
    at.run()
    assert not at.get("plotly_chart") and "lab.result" not in at.session_state  # a setting alone trains nothing

    at.button(key="lab.train").click()
    at.run()
    assert not at.exception and not at.error
    result = at.session_state["lab.result"]
    assert (result["lr"], result["steps"]) == (0.1, 3)
    assert [len(r) for r in result["runs"].values()] == [3, 3]
    loss, logit, gradients = chart_specs(at)  # the finished run's charts replaced the live ones, with Export menus
    assert [b.proto.label for b in at.get("download_button")] == ["Figure (HTML)", "Data (CSV)"] * 3
    layers = len(result["runs"]["Llama (no QK-norm)"][0]["grad_norms"])
    assert len(gradients["data"]) == 2 * layers and all(len(array(t["y"])) == 3 for t in gradients["data"])
    assert any("the first layer's gradient norm against the last layer's: Llama (no QK-norm)" in c.value
               for c in at.caption)
    assert [t["name"] for t in loss["data"]] == ["Llama (no QK-norm)", "Qwen3 (QK-norm)"]
    for trace, records in zip(loss["data"], result["runs"].values()):
        assert list(array(trace["y"])) == pytest.approx([r["loss"] for r in records])
    assert all(len(array(t["y"])) == 3 for t in logit["data"])
    assert at.dataframe[0].value["model"].tolist() == ["Llama (no QK-norm)", "Qwen3 (QK-norm)"]
    assert any(m.value.startswith("- **Llama (no QK-norm)**") for m in at.markdown)

    # Another learning rate reruns the page, not the training: the last run's charts stay, labelled as such.
    at.select_slider(key="view.lab.lr").set_value(1e-3)
    at.run()
    assert not at.exception and at.session_state["lab.result"] is result
    assert len(at.get("plotly_chart")) == 3
    assert any("show the last run" in c.value for c in at.caption)
    assert "learning rate 0.1 over 3 steps" in at.subheader[0].value


def test_page_without_the_corpus_says_how_to_make_it(monkeypatch, tmp_path):
    monkeypatch.setattr(training.corpus, "CORPUS_FILE", tmp_path / "missing.npy")
    at = open_page("pages/lab.py")
    assert not at.exception
    assert "python -m training.train_pair" in at.error[0].value and not at.button


def test_the_depth_sentence_follows_the_ratios():
    assert "without it fading" in analysis.depth_sentence({"A": 3.1, "B": 0.9})
    assert "faded by the first layer in B" in analysis.depth_sentence({"A": 1.0, "B": 0.1})
    assert "no gradients" in analysis.depth_sentence({"A": None})
    assert analysis.gradient_depth_ratio([{"step": 0, "loss": 1.0, "grad_norms": [2.0, 1.0]}]) == 2.0

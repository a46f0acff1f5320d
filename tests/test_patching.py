"""Activation patching: exact at the ends, each patch the edit it claims to be, clear errors, and the page."""

import numpy as np
import pytest
import torch

from explorer.edits import Edits
from explorer.patching import PatchRow, answer_difference, patch_sweep
from explorer.prompt_trace import PromptTrace
from explorer.trace import edited_logits
from model import ModelError, load_model, load_tokenizer

from .apptest_helpers import chart_titles, open_page

CLEAN, CORRUPTED = "The girl went to the park. Then", "The boy went to the park. Then"


@pytest.fixture(scope="module")
def pair():
    model, tokenizer = load_model("stories260K"), load_tokenizer("stories260K")
    answers = tokenizer.encode(" she")[-1], tokenizer.encode(" he")[-1]
    return model, tokenizer.encode(CLEAN), tokenizer.encode(CORRUPTED), answers


def test_patching_the_whole_stream_reproduces_the_clean_run_and_nothing_the_corrupted(pair):
    model, clean, corrupted, _ = pair
    clean_stream = PromptTrace(model, clean)["layers.0.resid_pre"]
    everything = Edits(replace={"layers.0.resid_pre": lambda x: clean_stream.to(x.dtype).expand_as(x).clone()})
    patched = edited_logits(model, torch.tensor([corrupted]), everything, logits_to_keep=len(clean))
    assert torch.equal(patched, edited_logits(model, torch.tensor([clean]), Edits(), logits_to_keep=len(clean)))
    nothing = edited_logits(model, torch.tensor([corrupted]), Edits())
    assert torch.equal(nothing, model(torch.tensor([corrupted]), logits_to_keep=1).float())


def test_each_patch_is_the_edit_it_claims_and_the_ends_are_0_and_1(pair):
    model, clean, corrupted, (she, he) = pair
    result = patch_sweep(model, clean, corrupted, she, he)
    L, T, H = model.config.num_hidden_layers, len(clean), model.config.num_attention_heads
    assert result.results["resid_pre"].shape == (L, T) and result.results["self_attn.z"].shape == (L, H)
    assert result.clean > result.corrupted
    # Positions before the first differing token carry nothing of the difference (they read nothing after them);
    # at layer 0 the difference is in the tokens that differ and nowhere else.
    differ = [i for i, (a, b) in enumerate(zip(clean, corrupted)) if a != b]
    assert np.allclose(result.results["resid_pre"][:, : differ[0]], 0, atol=1e-6)
    same = [i for i in range(T) if i not in differ]
    assert np.allclose(result.results["resid_pre"][0, same], 0, atol=1e-6)
    assert np.abs(result.results["resid_pre"][0, differ]).max() > 0.1
    # A head's entry equals a hand-written edit of that head alone (its z replaced at every position).
    clean_z = PromptTrace(model, clean)["layers.4.self_attn.z"]

    def head_2(z: torch.Tensor) -> torch.Tensor:
        z = z.clone()
        z[:, 2] = clean_z[:, 2]
        return z

    by_hand = answer_difference(edited_logits(model, torch.tensor([corrupted]),
                                              Edits(replace={"layers.4.self_attn.z": head_2})), she, he)
    assert result.results["self_attn.z"][4, 2] == pytest.approx(result.normalise(float(by_hand[0])), abs=1e-5)


def test_patch_rows_patch_position_b_in_row_b():
    clean = torch.arange(6.0).view(1, 3, 2) + 100
    patched = PatchRow(clean)(torch.zeros(3, 3, 2))
    assert [[int(patched[b, p, 0]) for p in range(3)] for b in range(3)] == [[100, 0, 0], [0, 102, 0], [0, 0, 104]]


def test_bad_pairs_say_what_to_do(pair):
    model, clean, corrupted, (she, he) = pair
    with pytest.raises(ModelError, match="same length"):
        patch_sweep(model, clean, corrupted[:-1], she, he)
    with pytest.raises(ModelError, match="the same: there is no difference"):
        patch_sweep(model, clean, clean, she, he)
    with pytest.raises(ModelError, match="two different tokens"):
        patch_sweep(model, clean, corrupted, she, she)
    with pytest.raises(ModelError, match="vocabulary"):
        patch_sweep(model, clean, corrupted, she, 10**6)


def test_the_page_runs_the_sweep_on_a_button_and_explains_bad_input():
    at = open_page("pages/patching.py")
    assert not at.exception and not at.error and chart_titles(at) == []
    at.button(key="patching.run").click().run()
    assert not at.exception and not at.error
    assert chart_titles(at) == ["Patching the residual stream entering the layer, layer by position",
                                "Patching the MLP output, layer by position",
                                "Patching one attention head (its output at every position)"]
    assert any("restores the most at layer" in m.value for m in at.markdown)
    at.text_input(key="view.patching.corrupted").set_value("The little boy went to the park. Then").run()
    assert not at.exception and chart_titles(at) == []  # another input: the last sweep is not shown for it
    at.button(key="patching.run").click().run()
    assert not at.exception and "same length" in at.error[0].value


def test_the_page_refuses_a_sweep_that_would_hold_the_server_for_too_long():
    at = open_page("pages/patching.py")
    long = "The girl went to the park and played with her friends all day long. " * 40
    at.text_input(key="view.patching.clean").set_value(long).run()
    at.text_input(key="view.patching.corrupted").set_value(long.replace("girl", "boy")).run()
    assert not at.exception and "keep the prompts to" in at.warning[0].value
    assert not [b for b in at.button if b.key == "patching.run"]

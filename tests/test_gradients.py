"""Gradient flow: the same gradients as transformers, the shared model untouched, and safe beside other sessions."""

import threading

import numpy as np
import pytest
import torch

from explorer.gradients import GROUPS, backward, gradient_flow
from model import ModelError, load_model
from tests.conftest import random_ids

from .apptest_helpers import chart_titles, open_page


@pytest.mark.parametrize("variant", ["llama-gqa-llama3", "qwen2-bias", "qwen3-qknorm"])
def test_parameter_gradients_equal_transformers(tiny_checkpoint, variant):
    folder, reference = tiny_checkpoint(variant)
    model = load_model(folder)
    ids = random_ids(model.config.vocab_size, batch=1, tokens=16, seed=4)
    reference.zero_grad()
    expected_loss = reference(ids, labels=ids).loss
    expected_loss.backward()
    loss, grads, _ = backward(model, ids[0].tolist())
    assert loss == pytest.approx(expected_loss.item(), rel=1e-5)
    for name, p in reference.named_parameters():
        ours = grads[name.removeprefix("model.")] if name.removeprefix("model.") in grads else None
        if ours is None:  # lm_head.weight tied to the embedding: one gradient, under the embedding's name
            assert name == "lm_head.weight" and model.config.tie_word_embeddings
            continue
        torch.testing.assert_close(ours, p.grad, rtol=1e-5, atol=1e-6 * float(p.grad.abs().max()) + 1e-9)
    reference.zero_grad()


def test_the_shared_model_is_left_as_it_was():
    model = load_model("stories260K")
    before = {name: p.clone() for name, p in model.named_parameters()}
    gradient_flow(model, list(range(1, 20)))
    for name, p in model.named_parameters():
        assert p.grad is None and not p.requires_grad and torch.equal(p, before[name]), name


def test_concurrent_gradient_runs_give_the_serial_results():
    model = load_model("stories260K")
    prompts = [random_ids(512, batch=1, tokens=12, seed=s)[0].tolist() for s in range(4)]
    serial = [gradient_flow(model, ids) for ids in prompts]
    results = [None] * len(prompts)

    def run(i: int) -> None:
        results[i] = gradient_flow(model, prompts[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(prompts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for alone, together in zip(serial, results):
        assert alone.loss == together.loss and np.array_equal(alone.stream, together.stream)
        assert all(np.array_equal(alone.groups[g], together.groups[g]) for g in alone.groups)


def test_what_the_flow_holds():
    model = load_model("stories260K")
    flow = gradient_flow(model, list(range(1, 25)))
    L = model.config.num_hidden_layers
    assert set(flow.groups) == set(GROUPS) - {"q_norm", "k_norm"}  # a Llama: no QK-norm gains
    assert all(values.shape == (L,) and np.all(values > 0) for values in flow.groups.values())
    assert flow.stream.shape == (L + 1, 24) and flow.saliency.shape == (24,)
    assert np.all(flow.stream[:, -1] == 0)  # the last position predicts nothing the loss counts
    with pytest.raises(ModelError, match="at least two tokens"):
        gradient_flow(model, [5])


def test_the_page_runs_the_backward_on_a_toggle():
    at = open_page("pages/gradients.py")
    assert not at.exception and not at.error and chart_titles(at) == []
    at.toggle(key="view.gradients.run").set_value(True).run()
    assert not at.exception and not at.error
    titles = chart_titles(at)
    assert len(titles) == 3 and any("parameter" in t for t in titles)

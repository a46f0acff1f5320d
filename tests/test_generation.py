"""Generation: the KV cache changes nothing but speed, greedy decoding equals transformers', the bundled model
reproduces llama2.c's reference text, and sampling, EOS, batches and the context limit behave; what the Generate
page shows of each step."""

import dataclasses

import pytest
import torch

from explorer.analysis.generation import kv_cache_growth, traced_steps
from explorer.prompt_trace import PromptTrace
from model import KVCache, load_model, load_tokenizer
from model.sources import BUNDLED_DIR
from tests.conftest import VARIANTS, random_ids

NEW = 20  # new tokens per test: with a 5-token prompt, well past mistral-window's sliding window of 8


def without_eos(model):
    """The same model with no EOS, so that generation runs for exactly max_new_tokens."""
    model.config = dataclasses.replace(model.config, eos_token_ids=())
    return model


def with_eos(model, *eos: int):
    model.config = dataclasses.replace(model.config, eos_token_ids=eos)
    return model


@pytest.fixture
def load(tiny_checkpoint):
    """variant -> (a fresh Decoder of ours, transformers' model with the same weights)."""

    def get(variant):
        folder, hf = tiny_checkpoint(variant)
        return load_model(folder, device="cpu"), hf

    return get


@torch.no_grad()
def greedy_without_cache(model, ids: torch.Tensor, n: int) -> torch.Tensor:
    """The reference: feed the whole sequence through the model at every step and take the argmax."""
    for _ in range(n):
        ids = torch.cat([ids, model(ids)[:, -1].argmax(-1, keepdim=True)], dim=1)
    return ids


# --- (a) the KV cache ---


@pytest.mark.parametrize("variant", VARIANTS)
def test_cached_generation_equals_recomputing(load, variant):
    model = without_eos(load(variant)[0])
    prompt = random_ids(model.config.vocab_size, batch=2, tokens=5)
    out = model.generate(prompt, NEW)
    assert out.shape == (2, 5 + NEW)
    assert torch.equal(out[:, :5], prompt)
    assert torch.equal(out, greedy_without_cache(model, prompt, NEW))


@pytest.mark.parametrize("variant", ["llama-gqa-llama3", "mistral-window", "qwen3-qknorm"])
@torch.no_grad()
def test_cached_logits_equal_full_forward(load, variant):
    """Stronger than equal argmaxes: every step's logits, including a prompt fed in two chunks (a multi-token
    query after cached keys, which needs an explicit mask) and steps past the sliding window."""
    model = load(variant)[0]
    ids = random_ids(model.config.vocab_size, batch=2, tokens=30, seed=1)
    full = model(ids)
    cache = KVCache(model.config, 2, 30, "cpu", model.dtype)
    steps = [model(ids[:, :7], kv_cache=cache, start=0), model(ids[:, 7:12], kv_cache=cache, start=7)]
    steps += [model(ids[:, t : t + 1], kv_cache=cache, start=t) for t in range(12, 30)]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=0)


def test_the_sliding_window_matters_past_its_length(load):
    """Guards the window tests against passing vacuously: without the window the continuation differs."""
    model = without_eos(load("mistral-window")[0])
    prompt = random_ids(model.config.vocab_size, batch=2, tokens=5)
    windowed = model.generate(prompt, NEW)
    model.config = dataclasses.replace(model.config, sliding_window=None)
    unwindowed = model.generate(prompt, NEW)
    # Tokens predicted while the whole sequence still fits in the window (positions 0..7) agree.
    assert torch.equal(windowed[:, : 8 + 1], unwindowed[:, : 8 + 1])
    assert not torch.equal(windowed, unwindowed)


# --- (b) transformers ---


@pytest.mark.parametrize("variant", VARIANTS)
def test_greedy_equals_transformers_generate(load, variant):
    """Both stop when every row has produced EOS (id 2) and pad finished rows with it."""
    ours, hf = load(variant)
    prompt = random_ids(ours.config.vocab_size, batch=2, tokens=5)
    expected = hf.generate(
        prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=NEW, do_sample=False, pad_token_id=2
    )
    assert torch.equal(ours.generate(prompt, NEW), expected)


# --- (c) the bundled model against llama2.c's reference text ---


def test_stories260k_greedy_text():
    model, tokenizer = load_model("stories260K", device="cpu"), load_tokenizer("stories260K")
    out = model.generate(torch.tensor([[1]]), 200)
    assert out.shape == (1, 201)  # the story does not end (no EOS) within 200 tokens
    expected = (BUNDLED_DIR / "stories260K" / "expected_greedy_200.txt").read_text(encoding="utf-8")
    assert tokenizer.decode(out[0].tolist()) == expected


def test_on_token_sees_every_step_and_can_stop_generation():
    model = load_model("stories260K", device="cpu")
    seen = []
    out = model.generate(torch.tensor([[1]]), 12, on_token=lambda tokens: seen.append(tokens.clone()))
    assert [t.shape[1] for t in seen] == list(range(2, 14))  # one call per new token, the tokens so far
    assert torch.equal(seen[-1], out)

    class Stop(Exception):
        pass

    def stop_at_five(tokens):
        if tokens.shape[1] == 5:
            raise Stop  # what a Streamlit rerun does inside the page's callback

    with pytest.raises(Stop):
        model.generate(torch.tensor([[1]]), 12, on_token=stop_at_five)


# --- (d) sampling ---


@pytest.fixture
def sampler(load):
    return without_eos(load("llama-gqa-llama3")[0])


def test_sampling_with_a_seed_is_reproducible(sampler):
    prompt = random_ids(128, batch=2, tokens=5)
    first = sampler.generate(prompt, NEW, temperature=1.0, seed=123)
    torch.manual_seed(999)  # the global generator must not matter when a seed is given
    assert torch.equal(sampler.generate(prompt, NEW, temperature=1.0, seed=123), first)
    assert not torch.equal(sampler.generate(prompt, NEW, temperature=1.0, seed=124), first)
    assert not torch.equal(first, sampler.generate(prompt, NEW))  # it really sampled, not argmax


@pytest.mark.parametrize("settings", [dict(top_k=1), dict(top_p=1e-6), dict(top_k=1, top_p=0.9)])
@pytest.mark.parametrize("temperature", [0.7, 5.0])
def test_a_nucleus_of_one_token_is_greedy(sampler, settings, temperature):
    prompt = random_ids(128, batch=2, tokens=5)
    greedy = sampler.generate(prompt, NEW)
    for seed in range(2):
        assert torch.equal(sampler.generate(prompt, NEW, temperature=temperature, seed=seed, **settings), greedy)


@torch.no_grad()
def test_top_k_and_top_p_only_pick_allowed_tokens(sampler):
    prompt = random_ids(128, batch=2, tokens=5)
    k_out = sampler.generate(prompt, NEW, temperature=3.0, top_k=3, seed=0)
    p_out = sampler.generate(prompt, NEW, temperature=1.0, top_p=0.5, seed=0)
    for out, allowed in ((k_out, _top_k_set), (p_out, _top_p_set)):
        logits = sampler(out)[:, 4:-1]  # the logits that each new token was drawn from
        new = out[:, 5:]
        for b in range(2):
            for t in range(NEW):
                assert new[b, t].item() in allowed(logits[b, t])


def _top_k_set(logits):
    return set(logits.topk(3).indices.tolist())


def _top_p_set(logits):
    """The smallest set of most likely tokens whose probability reaches 0.5."""
    probs, order = logits.softmax(-1).sort(descending=True)
    return set(order[: int((probs.cumsum(-1) < 0.5).sum()) + 1].tolist())


# --- (e) EOS, batches, the context ---


def test_stops_at_eos(load):
    model = without_eos(load("llama-gqa-llama3")[0])
    prompt = random_ids(128, batch=1, tokens=5)
    free = model.generate(prompt, NEW)[0, 5:].tolist()
    eos = free[3]
    stop = free.index(eos)  # its first appearance, at step 3 or earlier
    out = with_eos(model, eos).generate(prompt, NEW)
    assert out[0, 5:].tolist() == free[: stop + 1]  # everything up to and including EOS, then nothing


def test_any_of_several_eos_ids_stops(load):
    """Llama 3 lists several EOS ids; the one that comes first stops generation, whichever place it has."""
    model = without_eos(load("llama-gqa-llama3")[0])
    prompt = random_ids(128, batch=1, tokens=5)
    free = model.generate(prompt, NEW)[0, 5:].tolist()
    late, early = free[6], free[2]
    assert late not in free[:3]  # so that it is the second id of the list that stops generation
    out = with_eos(model, late, early).generate(prompt, NEW)
    assert out[0, 5:].tolist() == free[: free.index(early) + 1]


def test_batch_rows_equal_separate_generations(load):
    model = without_eos(load("qwen2-bias")[0])
    prompts = random_ids(128, batch=2, tokens=6, seed=3)
    together = model.generate(prompts, NEW)
    for b in range(2):
        assert torch.equal(together[b : b + 1], model.generate(prompts[b : b + 1], NEW))


def test_a_row_that_ends_first_is_padded_with_eos(load):
    model = without_eos(load("llama-gqa-llama3")[0])
    prompts = random_ids(128, batch=2, tokens=5)
    free = model.generate(prompts, NEW)[:, 5:].tolist()
    eos = next(t for t in free[0][:10] if t not in free[1][:12])  # row 0 stops early, row 1 runs on longer
    out = with_eos(model, eos).generate(prompts, NEW)[:, 5:].tolist()
    stop0 = free[0].index(eos)
    stop1 = free[1].index(eos) if eos in free[1] else NEW - 1
    assert stop0 < stop1  # the case this test is about
    assert len(out[0]) == len(out[1]) == stop1 + 1  # generation ran until the last row finished
    assert out[0] == free[0][: stop0 + 1] + [eos] * (stop1 - stop0)
    assert out[1] == free[1][: stop1 + 1]


def test_max_new_tokens_is_clipped_at_the_context(load):
    model = without_eos(load("llama-gqa-llama3")[0])  # context 128
    prompt = random_ids(128, batch=2, tokens=125)
    out = model.generate(prompt, 10)
    assert out.shape == (2, 128)
    assert torch.equal(out, greedy_without_cache(model, prompt, 3))
    full = random_ids(128, batch=1, tokens=128)
    assert torch.equal(model.generate(full, 5), full)  # no room left: the prompt comes back unchanged
    assert torch.equal(model.generate(prompt, 0), prompt)


def test_generation_steps_are_the_probabilities_each_step_chose_from():
    """Read off one forward over prompt + continuation, each step's probabilities equal those the model gave the
    next token from the prompt and the tokens before it (a fresh forward per step, no KV cache)."""
    model, tokenizer = load_model("stories260K"), load_tokenizer("stories260K")
    prompt = tokenizer.encode("Once upon a time, there was a little")
    full = model.generate(torch.tensor([prompt]), 8, temperature=1.5, seed=3)[0].tolist()
    trace = PromptTrace(model, full)
    steps = traced_steps(trace, len(prompt), top=4, chunk=3)  # chunks of 3: the chunking must not show
    assert [s.position for s in steps] == list(range(len(prompt), len(full)))
    for s in steps:
        probs = model(torch.tensor([full[: s.position]]))[0, -1].softmax(-1)
        assert s.token == full[s.position]
        assert s.probability == pytest.approx(float(probs[s.token]), abs=1e-5)
        assert s.rank == int((probs > probs[s.token]).sum()) + 1
        assert [i for i, _ in s.alternatives] == probs.topk(4).indices.tolist()
    assert any(s.rank > 1 for s in steps)  # sampling at 1.5 took a less likely token somewhere (seed 3)
    greedy = model.generate(torch.tensor([prompt]), 8)[0].tolist()
    assert all(s.rank == 1 for s in traced_steps(PromptTrace(model, greedy), len(prompt)))


def test_kv_cache_growth_adds_one_position_per_step_after_the_prompt():
    config = load_model("stories260K").config
    per_position = 2 * config.num_hidden_layers * config.num_key_value_heads * config.head_dim * 4
    assert kv_cache_growth(config, 10, 3, 4) == [10 * per_position, 11 * per_position, 12 * per_position]

"""Autoregressive generation with a KV cache: the prompt goes through once, then one token per step."""

import math
from collections.abc import Callable
from numbers import Integral

import torch

from .errors import ModelError
from .kv_cache import KVCache


@torch.inference_mode()
def generate(
    model,
    input_ids: torch.Tensor,
    max_new_tokens: int,
    *,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    on_token: Callable[[torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """Prompt + new tokens (B, T + n). Temperature 0 is greedy. Stops early once every row has produced EOS;
    rows that finish first are padded with EOS.

    on_token(tokens so far, (B, T + k)) is called after each new token: to show the text as it grows, or to stop
    generating by raising (an app's rerun does)."""
    _check_settings(max_new_tokens, temperature, top_k, top_p)
    if not isinstance(input_ids, torch.Tensor):
        raise ModelError(f"input_ids must be a LongTensor of shape (batch, tokens), not a {type(input_ids).__name__}.")
    if input_ids.numel() == 0:  # before the dtype check: torch.tensor([[]]) is float, yet the problem is emptiness
        raise ModelError("The prompt is empty: give at least one token.")
    model.check_input(input_ids, 0)  # shape, dtype, context and vocabulary, before anything is allocated
    config = model.config
    B, T = input_ids.shape
    max_new_tokens = min(int(max_new_tokens), config.max_position_embeddings - T)  # never run past the context
    if max_new_tokens == 0:
        return input_ids
    generator = torch.Generator(device=model.device).manual_seed(seed) if seed is not None else None
    eos = torch.tensor(config.eos_token_ids, device=model.device, dtype=torch.long)
    cache = KVCache(config, B, T + max_new_tokens, model.device, model.dtype)

    tokens, done = input_ids.to(model.device), torch.zeros(B, dtype=torch.bool, device=model.device)
    logits = model(tokens, kv_cache=cache, start=0, logits_to_keep=1)[:, -1]
    for step in range(max_new_tokens):
        next_token = _sample(logits.float(), temperature, top_k, top_p, generator)  # (B,)
        if eos.numel():
            next_token = torch.where(done, eos[0], next_token)
            done |= torch.isin(next_token, eos)
        tokens = torch.cat([tokens, next_token[:, None]], dim=1)
        if on_token is not None:
            on_token(tokens)
        if bool(done.all()) or step == max_new_tokens - 1:
            break
        logits = model(next_token[:, None], kv_cache=cache, start=tokens.shape[1] - 1, logits_to_keep=1)[:, -1]
    return tokens


def _check_settings(max_new_tokens, temperature, top_k, top_p) -> None:
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, Integral) or max_new_tokens < 0:
        raise ModelError(f"max_new_tokens must be a whole number, 0 or more, not {max_new_tokens!r}.")
    if not math.isfinite(temperature) or temperature < 0:
        raise ModelError(f"temperature must be 0 (greedy) or a positive number, not {temperature!r}.")
    if top_k is not None and top_k < 1:
        raise ModelError(f"top_k must be 1 or more (or None to keep every token), not {top_k!r}.")
    if top_p is not None and not 0 < top_p <= 1:  # NaN fails this too
        raise ModelError(f"top_p must be in (0, 1] (or None to keep every token), not {top_p!r}.")


def _sample(logits: torch.Tensor, temperature: float, top_k, top_p, generator) -> torch.Tensor:
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits / temperature
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None:
        # Keep the smallest set of tokens whose probabilities add up to top_p (always at least the top one).
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        drop = cumulative - sorted_logits.softmax(dim=-1) >= top_p
        logits = logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
    probs = logits.softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)

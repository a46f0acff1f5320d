"""Autoregressive generation with a KV cache: the prompt goes through once, then one token per step."""

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
) -> torch.Tensor:
    """Prompt + new tokens (B, T + n). Temperature 0 is greedy. Stops early once every row has produced EOS;
    rows that finish first are padded with EOS."""
    if max_new_tokens < 0:
        raise ModelError("max_new_tokens must be 0 or more.")
    if temperature < 0:
        raise ModelError("temperature must be 0 (greedy) or more.")
    config = model.config
    B, T = input_ids.shape
    max_new_tokens = min(max_new_tokens, config.max_position_embeddings - T)
    if max_new_tokens <= 0:
        model._check_input(input_ids, 0)  # raises for an empty or too long prompt
        return input_ids
    generator = torch.Generator(device=model.device).manual_seed(seed) if seed is not None else None
    eos = torch.tensor(config.eos_token_ids, device=model.device, dtype=torch.long)
    cache = KVCache(config, B, T + max_new_tokens, model.device, model.dtype)

    tokens, done = input_ids.to(model.device), torch.zeros(B, dtype=torch.bool, device=model.device)
    logits = model(tokens, kv_cache=cache, start=0)[:, -1]
    for step in range(max_new_tokens):
        next_token = _sample(logits.float(), temperature, top_k, top_p, generator)  # (B,)
        if eos.numel():
            next_token = torch.where(done, eos[0], next_token)
            done |= torch.isin(next_token, eos)
        tokens = torch.cat([tokens, next_token[:, None]], dim=1)
        if bool(done.all()) or step == max_new_tokens - 1:
            break
        logits = model(next_token[:, None], kv_cache=cache, start=tokens.shape[1] - 1)[:, -1]
    return tokens


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

"""What a generation did, step by step: the probability of each token it wrote, the alternatives, the KV cache."""

from dataclasses import dataclass

import torch

from model import ModelConfig

from .model_facts import kv_cache_bytes


@dataclass(frozen=True)
class Step:
    """One generated token, read off the logits of the position before it (a forward over prompt + continuation
    computes the same logits that generation computed step by step through its KV cache)."""

    position: int  # where the token stands in the sequence
    token: int
    probability: float  # the model's softmax probability of the token, before temperature, top-k or top-p
    rank: int  # 1: the model's most likely token
    alternatives: list[tuple[int, float]]  # the top tokens and their probabilities, most likely first


def generation_steps(logits: torch.Tensor, ids: list[int], prompt_length: int, top: int = 5) -> list[Step]:
    """The steps of a generation from `logits` (P, V): the logits of positions prompt_length - 1 .. len(ids) - 2,
    i.e. of every position whose next token was generated."""
    new = torch.tensor(ids[prompt_length:])
    if logits.shape[0] != len(new):
        raise ValueError(f"{logits.shape[0]} positions of logits for {len(new)} generated tokens")
    probs = logits.float().softmax(-1)
    chosen = probs.gather(-1, new[:, None])[:, 0]
    ranks = (probs > chosen[:, None]).sum(-1) + 1
    best = probs.topk(min(top, probs.shape[-1]), dim=-1)
    return [Step(prompt_length + i, int(new[i]), float(chosen[i]), int(ranks[i]),
                 list(zip(best.indices[i].tolist(), best.values[i].tolist())))
            for i in range(len(new))]


def kv_cache_growth(config: ModelConfig, prompt_length: int, generated: int, bytes_per_value: int) -> list[int]:
    """For each generated token, the bytes of keys and values cached when the model chose it: the prompt's (one
    forward over all of it) and one more position for every token generated before it. The last token is never
    run through the model, so a generation of n tokens ends with prompt_length + n - 1 positions cached."""
    c = config
    return [kv_cache_bytes(c.num_hidden_layers, c.num_key_value_heads, c.head_dim, prompt_length + step,
                           bytes_per_value) for step in range(generated)]


def traced_steps(t, prompt_length: int, top: int = 5, chunk: int = 64) -> list[Step]:
    """The steps of the generation that a PromptTrace `t` holds after `prompt_length` prompt tokens, computed once
    per trace; the logits go through the LM head `chunk` positions at a time (512 of Qwen3's are 311 MB)."""
    def compute() -> list[Step]:
        ids, steps = t.input_ids[0].tolist(), []
        for first in range(prompt_length, len(ids), chunk):
            last = min(first + chunk, len(ids))
            logits = t.logits_at(range(first - 1, last - 1))[0]
            steps += generation_steps(logits, ids[:last], first, top)
        return steps

    return t.memo(("generation_steps", prompt_length, top), compute)

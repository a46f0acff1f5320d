"""Numbers about attention heads, from the captured `scores` and `pattern` of a trace.

Head order follows the capture vocabulary: query head h reads KV head h // G, so heads g*G .. g*G + G-1 share KV
head g. The per-head summaries average over query positions 1..T-1: position 0 can only attend to itself, so
including it would add a forced entropy of 0 and a forced first-token weight of 1 to every head.
"""

import numpy as np

from explorer.trace import Trace

PATTERN = "layers.{}.self_attn.pattern"
SCORES = "layers.{}.self_attn.scores"


def head_label(head: int, group_size: int) -> str:
    """How every view names a query head: its index and the KV head it shares."""
    return f"head {head} (KV {head // group_size})"


def masked_as_nan(values: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """`values` with the cells the causal mask forbids (score -inf) set to NaN, so figures leave them blank."""
    return np.where(np.isneginf(scores), np.nan, values)


def layer_heads(t: Trace, layer: int) -> tuple[np.ndarray, np.ndarray]:
    """(pattern, scores) of one layer for the first prompt, each (Hq, T, T), masked cells NaN."""
    scores = t[SCORES.format(layer)][0].numpy()
    pattern = t[PATTERN.format(layer)][0].numpy()
    return masked_as_nan(pattern, scores), masked_as_nan(scores, scores)


def pattern_by_group(t: Trace, layer: int) -> np.ndarray:
    """One layer's pattern as (Hkv, G, T, T): row g holds the G query heads that read KV head g. Masked cells NaN."""
    grouped = t.pattern_by_group(layer)[0].numpy()
    scores = t[SCORES.format(layer)][0].numpy().reshape(grouped.shape)
    return masked_as_nan(grouped, scores)


def entropy(pattern: np.ndarray) -> np.ndarray:
    """Mean entropy in nats of each head's attention rows, over query positions >= 1.

    pattern: (..., T, T) with rows summing to 1 (masked cells 0 or NaN). Returns shape (...). A head that puts all
    its weight on one key scores 0; one that spreads evenly over the i + 1 visible keys scores log(i + 1).
    """
    p = np.nan_to_num(pattern[..., 1:, :])
    with np.errstate(divide="ignore", invalid="ignore"):
        per_query = -np.where(p > 0, p * np.log(p), 0.0).sum(-1)
    return per_query.mean(-1)


def first_token_attention(pattern: np.ndarray) -> np.ndarray:
    """Mean weight each head puts on position 0 (the "attention sink"), over query positions >= 1."""
    return np.nan_to_num(pattern[..., 1:, 0]).mean(-1)


def previous_token_attention(pattern: np.ndarray) -> np.ndarray:
    """Mean of pattern[i, i - 1] over i >= 1: how strongly each head reads the token just before the query."""
    return np.nan_to_num(np.diagonal(pattern, offset=-1, axis1=-2, axis2=-1)).mean(-1)


SUMMARIES = {
    "entropy": entropy,
    "first token": first_token_attention,
    "previous token": previous_token_attention,
}


def head_summaries(t: Trace) -> dict[str, np.ndarray]:
    """Each of SUMMARIES for every layer and head: name -> (layers, Hq), from the first prompt of the trace."""
    layers = range(t.config.num_hidden_layers)
    patterns = np.stack([t[PATTERN.format(i)][0].numpy() for i in layers])  # (L, Hq, T, T)
    return {name: summary(patterns) for name, summary in SUMMARIES.items()}

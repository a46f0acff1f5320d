"""Numbers about attention heads, from the captured `scores` and `pattern` of a trace.

Head order follows the capture vocabulary: query head h reads KV head h // G, so heads g*G .. g*G + G-1 share KV
head g. The per-head summaries average over query positions 1..T-1: position 0 can only attend to itself, so
including it would add a forced entropy of 0 and a forced first-token weight of 1 to every head.
"""

import numpy as np
import torch

from explorer.trace import Trace

PATTERN = "layers.{}.self_attn.pattern"
SCORES = "layers.{}.self_attn.scores"


def head_label(head: int, group_size: int) -> str:
    """How every view names a query head: its index and the KV head it shares."""
    return f"head {head} (KV {head // group_size})"


def masked_as_nan(values: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """`values` with the cells the causal mask forbids (score -inf) set to NaN, so figures leave them blank."""
    return np.where(np.isneginf(scores), np.nan, values)


def layer_heads(t: Trace, layer: int, rows: tuple[int, int] | None = None, *,
                with_scores: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """(pattern, scores) of one layer for the first prompt, each (Hq, T, T), masked cells NaN; with `rows` =
    (start, stop), only queries start .. stop-1 against the keys they see, (Hq, stop - start, stop). Without
    `with_scores`, scores is None (a long prompt's matrices are large: each copy counts)."""
    if rows is None:
        scores, pattern = t[SCORES.format(layer)][0].numpy(), t[PATTERN.format(layer)][0].numpy()
    else:
        window = t.attention_window(layer, *rows)
        scores, pattern = window["scores"][0].numpy(), window["pattern"][0].numpy()
    return masked_as_nan(pattern, scores), masked_as_nan(scores, scores) if with_scores else None


def pattern_by_group(t: Trace, layer: int, rows: tuple[int, int] | None = None) -> np.ndarray:
    """One layer's pattern as (Hkv, G, T, T): row g holds the G query heads that read KV head g. Masked cells NaN.
    `rows` as for layer_heads."""
    pattern, _ = layer_heads(t, layer, rows, with_scores=False)
    Hq, W, S = pattern.shape
    return pattern.reshape(t.config.num_key_value_heads, t.config.group_size, W, S)


def uniform_entropy(tokens: int) -> float:
    """The mean entropy (nats) of causal attention spread evenly over every key a query sees, over query positions
    >= 1 as `entropy` averages: the largest a head's mean entropy can be, and so the top of its colour scale."""
    return float(np.mean(np.log(np.arange(2, tokens + 1)))) if tokens > 1 else 0.0


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


def summarize_pattern(pattern: torch.Tensor) -> torch.Tensor:
    """(len(SUMMARIES), Hq) of one layer's pattern (B, Hq, T, T), batch row 0: what a PromptTrace's base forward keeps
    for every layer, so that the at-a-glance view needs no layer's whole pattern."""
    p = pattern[0].float().cpu().numpy()
    # One head at a time: the summaries' temporaries are then a few (T, T) arrays, not a few (Hq, T, T) ones.
    per_head = [[summary(head) for summary in SUMMARIES.values()] for head in p]  # (Hq, len(SUMMARIES))
    return torch.tensor(per_head, dtype=torch.float32).T


def head_summaries(t) -> dict[str, np.ndarray] | None:
    """Each of SUMMARIES for every layer and head: name -> (layers, Hq), from a PromptTrace's per-layer summaries.
    None when its forward never formed the patterns (a prompt too long to hold one layer's)."""
    rows = [t.summary(i, "self_attn.pattern") for i in range(t.config.num_hidden_layers)]
    if any(row is None for row in rows):
        return None
    stacked = torch.stack(rows).numpy()  # (L, len(SUMMARIES), Hq)
    return {name: stacked[:, j] for j, name in enumerate(SUMMARIES)}

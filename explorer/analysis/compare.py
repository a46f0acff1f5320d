"""Numbers for comparing a Llama-style and a Qwen3-style model: q/k lengths around QK-norm, per-layer attention
statistics on a shared depth axis, and how much an ablation moves the next-token distribution.

Models with different layer counts are matched by relative depth: layer i of A (of LA) faces layer
round(i·(LB−1)/(LA−1)) of B, rounding halves up.
"""

import math

import numpy as np
import torch

from explorer.edits import Edits
from explorer.trace import Trace
from model import Decoder, ModelConfig

from .attention import entropy, first_token_attention

ATTENTION = "layers.{}.self_attn.{}"


def aligned_layer(layer: int, layers_a: int, layers_b: int) -> int:
    """The layer of B (of `layers_b`) at the same relative depth as `layer` of A (of `layers_a`)."""
    if layers_a == 1:
        return 0
    return int(math.floor(layer * (layers_b - 1) / (layers_a - 1) + 0.5))


def depth_axes(layers_a: int, layers_b: int) -> tuple[np.ndarray, np.ndarray, str]:
    """x positions of A's and B's layers on one axis, and its title: layer numbers when the counts agree, otherwise
    relative depth from 0 (first layer) to 1 (last layer)."""
    if layers_a == layers_b:
        return np.arange(layers_a, dtype=float), np.arange(layers_b, dtype=float), "layer"
    return (_relative_depth(layers_a), _relative_depth(layers_b),
            "relative depth (0 = first, 1 = last layer)")


def _relative_depth(layers: int) -> np.ndarray:
    return np.arange(layers) / max(layers - 1, 1)


def vector_norms(x: torch.Tensor) -> np.ndarray:
    """L2 length of every per-head, per-token vector of a captured (B, H, T, dh) tensor, first prompt: (H, T)."""
    return x[0].float().norm(dim=-1).numpy()


def qk_norm_stages(t: Trace, layer: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Stage name -> (‖q‖ of shape (Hq, T), ‖k‖ of shape (Hkv, T)) at one layer.

    A model with QK-norm has two stages, its raw projections and the normalised vectors that RoPE turns; one
    without has only the raw projections (which RoPE turns directly). A layer whose QK-norm an edit switched off
    has no normalised vectors, so it shows only the raw stage too.
    """
    name = ATTENTION.format(layer, "{}")
    raw = (vector_norms(t[name.format("q")]), vector_norms(t[name.format("k")]))
    if name.format("q_normed") not in t:
        return {"raw q, k": raw}
    normed = (vector_norms(t[name.format("q_normed")]), vector_norms(t[name.format("k_normed")]))
    return {"before QK-norm": raw, "after QK-norm": normed}


def qk_norm_gains(model: Decoder, layer: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The learned gain vectors (dh,) of q_norm and k_norm at one layer, or None for a model without QK-norm."""
    attention = model.layers[layer].self_attn
    if not model.config.qk_norm:
        return None
    return (attention.q_norm.weight.detach().float().cpu().numpy(),
            attention.k_norm.weight.detach().float().cpu().numpy())


def max_abs_score(scores: np.ndarray) -> float:
    """The largest |q·k/√dh| among the causally visible cells of (..., T, T) scores (masked cells are -inf)."""
    return float(np.abs(scores[np.isfinite(scores)]).max())


LAYER_METRICS = {
    "largest |score|": lambda scores, pattern: max_abs_score(scores),
    "entropy": lambda scores, pattern: float(entropy(pattern).mean()),
    "first token": lambda scores, pattern: float(first_token_attention(pattern).mean()),
}


def layer_metrics(t: Trace) -> dict[str, np.ndarray]:
    """Each of LAYER_METRICS per layer, (layers,), from the first prompt. Entropy and first-token weight average
    over heads and over query positions after the first (see analysis/attention.py); needs two or more tokens."""
    values = {name: [] for name in LAYER_METRICS}
    for layer in range(t.config.num_hidden_layers):
        scores = t[ATTENTION.format(layer, "scores")][0].numpy()
        pattern = t[ATTENTION.format(layer, "pattern")][0].numpy()
        for name, metric in LAYER_METRICS.items():
            values[name].append(metric(scores, pattern))
    return {name: np.array(v) for name, v in values.items()}


def next_token_probabilities(logits: torch.Tensor) -> np.ndarray:
    """Softmax over the vocabulary at the last position of the first prompt, (V,), from (B, T, V) logits."""
    return logits[0, -1].double().softmax(-1).numpy()


def kl_by_position(logits_p: torch.Tensor, logits_q: torch.Tensor) -> np.ndarray:
    """KL(P ‖ Q) in nats at every position of the first prompt, (T,), from two (B, T, V) logit tensors.

    Computed from log-softmax in float64, so a probability that underflows to 0 in Q gives a large number rather
    than infinity."""
    log_p = logits_p[0].double().log_softmax(-1)
    log_q = logits_q[0].double().log_softmax(-1)
    return (log_p.exp() * (log_p - log_q)).sum(-1).clamp_min(0.0).numpy()


def ablation(config: ModelConfig, layers: list[int]) -> tuple[str, Edits]:
    """The QK-norm ablation that applies to this model on `layers`: a description and the edit.

    A model with QK-norm gets it switched off; a model without gets a parameter-free per-head RMS normalisation of
    q and k, before RoPE, where Qwen3 has its QK-norm (no learned gain: the model never trained one)."""
    chosen = frozenset(layers)
    where = ", ".join(str(i) for i in sorted(chosen))
    if config.qk_norm:
        return f"QK-norm off on layer{'s' * (len(chosen) > 1)} {where}", Edits(qk_norm_off=chosen)
    return f"QK-norm added on layer{'s' * (len(chosen) > 1)} {where}", Edits(qk_norm_add=chosen)


def changed_candidates(p_unedited: np.ndarray, p_edited: np.ndarray, k: int) -> np.ndarray:
    """Token ids to show for a changed next-token distribution: the union of both top-k, most likely unedited
    first."""
    top = np.union1d(np.argsort(-p_unedited)[:k], np.argsort(-p_edited)[:k])
    return top[np.argsort(-p_unedited[top], kind="stable")]

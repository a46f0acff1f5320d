"""The lessons' live experiments on the loaded model: each takes a block's mechanism away with an edit (QK-norm off,
KV heads mean-pooled into fewer, SwiGLU's gate made constant), measures what changes, and words a verdict from the
numbers, so that the page says what this model shows whether or not it agrees with the textbook.

Edits are ordinary Edits.replace functions at ordinary capture names; they are small frozen dataclasses so that
their repr (part of a shared trace's cache key) is the same on every rerun.
"""

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..edits import Edits
from . import compare

LOSS_POSITIONS = 256  # the prompt's loss is measured on its last positions at most: the LM head's logits stay small


@dataclass(frozen=True)
class PromptLoss:
    loss: float  # mean next-token cross-entropy over the measured positions (nats)
    predictions: np.ndarray  # the top-1 next token at each of them


def prompt_loss(t) -> PromptLoss:
    """How well the traced forward predicts the prompt's own next tokens, on its last LOSS_POSITIONS positions."""
    def compute() -> PromptLoss:
        ids = t.input_ids[0]
        first = max(0, len(ids) - 1 - LOSS_POSITIONS)
        logits = t.logits_at(range(first, len(ids) - 1))[0]
        return PromptLoss(F.cross_entropy(logits, ids[first + 1:]).item(), logits.argmax(-1).numpy())

    return t.memo("prompt_loss", compute)


# ---------------------------------------------------------------- QK-norm


@dataclass(frozen=True)
class QkNormAblation:
    with_norm: np.ndarray  # largest |attention score| of each layer, as trained
    without_norm: np.ndarray  # the same with q_norm and k_norm skipped in every layer
    bound: np.ndarray  # per layer, what QK-norm allows at most: max|q gain| · max|k gain| · √head_dim


def qk_norm_edit(layers: int) -> Edits:
    return Edits(qk_norm_off=frozenset(range(layers)))


def qk_norm_ablation(model, unedited, edited) -> QkNormAblation:
    """From the traces of a QK-norm model with and without its norms (qk_norm_edit).

    With QK-norm each head's q and k have root-mean-square 1 before their gains, so |q| ≤ max|g_q|·√dh and likewise
    k, and RoPE keeps lengths: |q·k|/√dh ≤ max|g_q|·max|g_k|·√dh. The bound follows from the gains alone."""
    layers, dh = model.config.num_hidden_layers, model.config.head_dim
    bound = []
    for layer in range(layers):
        q_gain, k_gain = compare.qk_norm_gains(model, layer)
        bound.append(float(np.abs(q_gain).max() * np.abs(k_gain).max() * math.sqrt(dh)))
    return QkNormAblation(compare.layer_metrics(unedited)["largest |score|"],
                          compare.layer_metrics(edited)["largest |score|"], np.array(bound))


def qk_norm_verdict(result: QkNormAblation) -> str:
    within = bool(np.all(result.with_norm <= result.bound * (1 + 1e-4)))  # float rounding of the bound's product
    top_with, top_without = int(result.with_norm.argmax()), int(result.without_norm.argmax())
    change = result.without_norm.max() / result.with_norm.max()
    bounded = (f"every score lies within the bound its gains set (largest {result.with_norm.max():.3g} in layer "
               f"{top_with}, against {result.bound[top_with]:.3g} there)" if within else
               f"some scores exceed the bound its gains set (layer {int((result.with_norm - result.bound).argmax())})"
               ": the claim does not hold here")
    direction = "larger" if change > 1 else "smaller"
    return (f"**Measured:** with QK-norm {bounded}. Without it, the largest score is {result.without_norm.max():.3g} "
            f"(layer {top_without}): **{change:.3g}× {direction}**, and no bound holds. The model was trained with "
            "QK-norm, so its projections never learned to keep q and k small on their own: this ablation shows what "
            "the norms do in this model, not how a model trained without them would behave. The Stability lab "
            "trains both.")


# ---------------------------------------------------------------- GQA


@dataclass(frozen=True)
class MeanOverKvHeads:
    """k or v (B, Hkv, T, dh) with each run of `pool` neighbouring KV heads replaced by their mean: the same as
    a model with Hkv / pool KV heads whose k_proj and v_proj rows are those heads' means (the projections are
    linear), the conversion of Ainslie et al. (2023)."""

    pool: int

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        B, H, T, dh = x.shape
        pooled = x.view(B, H // self.pool, self.pool, T, dh).mean(2, keepdim=True)
        return pooled.expand(-1, -1, self.pool, -1, -1).reshape(B, H, T, dh)


def kv_pooling_edit(layers: int, pool: int) -> Edits:
    pooling = MeanOverKvHeads(pool)
    return Edits(replace={f"layers.{i}.self_attn.{kv}": pooling for i in range(layers) for kv in ("k", "v")})


def kv_head_options(kv_heads: int) -> list[int]:
    """Fewer KV heads the model can be pooled to: every divisor of its own count, most first, down to 1 (MQA)."""
    return [n for n in range(kv_heads - 1, 0, -1) if kv_heads % n == 0]


def quality_cost(baseline: PromptLoss, converted: PromptLoss) -> tuple[float, float]:
    """(loss increase in nats, share of positions whose top-1 prediction stayed the same)."""
    return converted.loss - baseline.loss, float((converted.predictions == baseline.predictions).mean())


def size_of(change: float, loss: float) -> str:
    """A loss change in words, relative to the loss itself."""
    relative = change / loss
    if relative < 0.01:
        return "no measurable cost" if relative < 0.001 else "a small cost"
    return "a noticeable cost" if relative < 0.1 else "a large cost"


def gqa_verdict(loss: float, rows: list[tuple[int, float, float, float]]) -> str:
    """rows: (KV heads, KV cache shrink factor, loss change, top-1 agreement) of each pooled conversion."""
    parts = [f"{kv} KV head{'s' * (kv > 1)} (cache {shrink:g}× smaller): {change:+.3f} nats, {size_of(change, loss)}, "
             f"{agree:.0%} of top-1 predictions unchanged" for kv, shrink, change, agree in rows]
    return ("**Measured** on the prompt's own next tokens (loss {:.3f} nats as trained): ".format(loss)
            + "; ".join(parts) + ". The conversion is made without any retraining. Ainslie et al. (2023) convert "
            "the same way and then train on for 5% of the original steps ('uptraining'), which recovers most of the "
            "cost; the claim of a small cost is about such a model, not about the bare conversion measured here.")


# ---------------------------------------------------------------- SwiGLU


@dataclass(frozen=True)
class CausalMeanOverTokens:
    """silu(gate) (B, T, F) with each neuron's value replaced by its mean over the tokens up to each position: the
    gate keeps its typical size but no longer depends on the token (and never on later ones)."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        counts = torch.arange(1, x.shape[1] + 1, device=x.device, dtype=x.dtype)[None, :, None]
        return x.cumsum(1) / counts


def gate_edit(layers: list[int]) -> Edits:
    return Edits(replace={f"layers.{i}.mlp.act": CausalMeanOverTokens() for i in layers})


def gate_verdict(loss: float, all_layers: float, one_layer: float, layer: int) -> str:
    """The loss changes of making the gate constant in every layer and in one."""
    return (f"**Measured:** with silu(gate) made constant per neuron (its running mean over the tokens so far) in "
            f"every layer, the prompt's loss goes from {loss:.3f} to {loss + all_layers:.3f} nats "
            f"(**{all_layers:+.3f}**, {size_of(all_layers, loss)}); in layer {layer} alone by {one_layer:+.3f} "
            f"({size_of(one_layer, loss)}). "
            + ("Token-by-token gating carries real work in this model: the parameter count is only half of the "
               "design." if all_layers / loss >= 0.01 else
               "This model leans little on its gates: a trained model can route around one mechanism with others."))

"""Direct logit attribution: which parts of the model wrote a logit, read off one forward.

The residual stream at a position is a sum: the token's embedding, then every layer's attention output and MLP output
(pre-norm blocks add them and change nothing else). The final RMSNorm divides that sum by its root-mean-square and
multiplies by a gain; the LM head then takes a dot product with the target token's row. Holding the division fixed at
the value this very forward computed (as TransformerLens does), the logit is linear in the stream, so it splits
exactly into one number per part:

    logit = Σ_parts s · (part · (g ⊙ W_U[target])),   s = 1 / rms(stream) from the forward.

Attention splits further into its query heads (each head's slice of o_proj) and an MLP into its neurons (each a
column of down_proj). With a second token the same holds for the difference of two logits ("she" − "he").
Works on a PromptTrace: the app's, or a notebook's `PromptTrace(model, ids)`, which computes each layer it is asked for.
"""

from dataclasses import dataclass

import numpy as np
import torch

from model import ModelError


@dataclass(frozen=True)
class Attribution:
    position: int
    target: int
    baseline: int | None  # the second token of a difference, if any
    logit: float  # the model's own logit (or difference) at the position
    scale: float  # 1 / rms of the final norm's input there, frozen from the forward
    embed: float
    heads: np.ndarray  # (layers, query heads): each head's share of its layer's attention output
    attn_bias: np.ndarray  # (layers,): o_proj's bias, where the model has one (else zeros)
    mlp: np.ndarray  # (layers,)

    @property
    def attn(self) -> np.ndarray:
        """(layers,): each layer's whole attention output."""
        return self.heads.sum(1) + self.attn_bias

    @property
    def total(self) -> float:
        """The sum of every part: equal to `logit` up to float rounding."""
        return float(self.embed + self.attn.sum() + self.mlp.sum())

    def running(self) -> np.ndarray:
        """(layers + 1,): the logit the stream would give so far, after the embedding and after each layer."""
        per_layer = self.attn + self.mlp
        return self.embed + np.concatenate([[0.0], np.cumsum(per_layer)])


def check_request(t, position: int, target: int, baseline: int | None = None) -> None:
    """Raise ModelError for a position or token this trace's model does not have."""
    T, V = len(t.tokens), t.config.vocab_size
    if not 0 <= position < T:
        raise ModelError(f"Position {position} is outside the prompt: it has positions 0 to {T - 1}.")
    for token in (target, baseline):
        if token is not None and not 0 <= token < V:
            raise ModelError(f"Token id {token} is not in this model's vocabulary (ids 0 to {V - 1}).")
    if baseline == target:
        raise ModelError("A difference needs two different tokens: the second is the same as the first.")


def _direction(t, target: int, baseline: int | None) -> torch.Tensor:
    """g ⊙ (W_U[target] − W_U[baseline]): what one unit of normalised stream is worth to the logit, per dimension."""
    decoder = t.decoder
    unembed = decoder.lm_head.weight.detach().float().cpu()
    direction = unembed[target] - (unembed[baseline] if baseline is not None else 0)
    return decoder.norm.weight.detach().float().cpu() * direction


def direct_logit_attribution(t, position: int, target: int, baseline: int | None = None) -> Attribution:
    """Split the logit of `target` (minus that of `baseline`) at `position` into the embedding, every query head,
    every layer's MLP (and output biases)."""
    check_request(t, position, target, baseline)
    config, decoder = t.config, t.decoder
    layers, heads, dh = config.num_hidden_layers, config.num_attention_heads, config.head_dim
    u = _direction(t, target, baseline)
    scale = 1.0 / float(t["norm.rms"][0, position])
    logits = t.logits_at([position])[0, 0]
    logit = float(logits[target] - (logits[baseline] if baseline is not None else 0))

    def worth(vector: torch.Tensor) -> float:
        return scale * float(vector.float() @ u)

    per_head = np.zeros((layers, heads))
    attn_bias, mlp = np.zeros(layers), np.zeros(layers)
    for layer in range(layers):
        block = decoder.layers[layer]
        o_proj = block.self_attn.o_proj
        # Head h writes W_O[:, h·dh:(h+1)·dh] @ z_h, worth z_h · (W_O_h^T u): one matrix-vector product for all heads.
        read = (o_proj.weight.detach().float().cpu().T @ u).view(heads, dh)
        z = t[f"layers.{layer}.self_attn.z"][0, :, position].float()  # (heads, dh)
        per_head[layer] = scale * (z * read).sum(-1).numpy()
        if o_proj.bias is not None:
            attn_bias[layer] = worth(o_proj.bias.detach().cpu())
        mlp[layer] = worth(t[f"layers.{layer}.mlp.out"][0, position])
    return Attribution(position, target, baseline, logit, scale, worth(t["embed"][0, position]), per_head,
                       attn_bias, mlp)


def stream_sum_error(t, position: int) -> tuple[float, float]:
    """(largest |difference|, largest |value|) between the final residual stream at `position` and the sum of its
    parts (embedding + every layer's attention output + every MLP output): the stream is nothing but that sum."""
    L = t.config.num_hidden_layers
    total = t["embed"][0, position].double().clone()
    for layer in range(L):
        total += t[f"layers.{layer}.self_attn.out"][0, position].double()
        total += t[f"layers.{layer}.mlp.out"][0, position].double()
    stream = t[f"layers.{L - 1}.resid_post"][0, position].double()
    return float((stream - total).abs().max()), float(stream.abs().max())


def stream_sum_verdict(error: float, size: float, parts: int) -> str:
    """The lesson's measured sentence, worded from stream_sum_error's numbers."""
    holds = error <= 1e-4 * max(1.0, size)
    return (f"**Measured** at the last position: the stream after the last layer and the sum of its {parts} parts "
            f"differ by at most **{error:.2g}** (the stream's largest number is {size:.3g}): "
            + ("**the claim holds**, up to float rounding." if holds else "**they differ by more than rounding**: "
               "this model's blocks do something besides adding (a norm after a sublayer, say), and the split below "
               "is inexact."))


def top_neurons(t, attribution: Attribution, layer: int, k: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """The `k` SwiGLU neurons of `layer` with the largest |contribution| to the attributed logit: (indices,
    contributions), largest first. Neuron j writes hidden_j · W_down[:, j]; down_proj's bias is not a neuron."""
    if not 0 <= layer < t.config.num_hidden_layers:
        raise ModelError(f"Layer {layer} is outside the model: it has layers 0 to {t.config.num_hidden_layers - 1}.")
    u = _direction(t, attribution.target, attribution.baseline)
    down = t.decoder.layers[layer].mlp.down_proj.weight.detach().float().cpu()  # (D, F)
    hidden = t[f"layers.{layer}.mlp.hidden"][0, attribution.position].float()  # (F,)
    contributions = (attribution.scale * hidden * (down.T @ u)).numpy()
    order = np.argsort(-np.abs(contributions))[:k]
    return order, contributions[order]


def single_token(tokenizer, text: str) -> int:
    """The id of `text` as one token of this tokenizer (" she", with its space), else ModelError saying why."""
    ids, start = tokenizer.encode(text), tokenizer.encode("")  # what the tokenizer puts before any text (BOS)
    if start and ids[: len(start)] == start:
        ids = ids[len(start):]
    if len(ids) != 1:
        pieces = " + ".join(repr(piece) for piece in tokenizer.tokens(ids)) or "no token at all"
        raise ModelError(f"{text!r} is {len(ids)} tokens for this tokenizer ({pieces}), not one: attribution "
                         "follows a single next token. Pick one from the list, or type a shorter piece.")
    return ids[0]

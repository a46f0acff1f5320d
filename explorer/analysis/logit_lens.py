"""The logit lens: read the residual stream after every layer as if it were the last one.

Applying the final RMSNorm and the LM head to an intermediate residual stream gives the model's "current guess"
for the next token at that depth. After the last layer the lens is exactly the model's real output.
"""

from dataclasses import dataclass

import numpy as np
import torch

from model import Decoder, ModelConfig

from ..compute import COMPUTE

TOP = 3  # guesses kept per layer and position (the heatmap shows the first, the hover all three)


# Positions the heatmap shows at a time: 24 fit their tokens in the cells, but each costs a pass of every layer through
# the LM head (2·L·D·V flops: 8.7 GFLOP for Qwen3-0.6B), so a large model shows fewer, to answer within a second or two.
MAX_POSITIONS_PER_VIEW = 24
MIN_POSITIONS_PER_VIEW = 8
FLOPS_PER_VIEW = 50e9
CHUNK_BYTES = 256 * 2**20


@dataclass
class LogitLens:
    top_ids: np.ndarray  # (L, P, TOP) token ids of the most likely next tokens after each layer, best first
    top_probs: np.ndarray  # (L, P, TOP) their probabilities
    final_ids: np.ndarray  # (P,) the model's real prediction at each position (argmax of its logits)
    final_rank: np.ndarray  # (L, P) rank of that prediction after each layer: 1 = the lens's top guess
    final_prob: np.ndarray  # (L, P) its probability after each layer

    def column(self, j: int) -> "LogitLens":
        return LogitLens(self.top_ids[:, j : j + 1], self.top_probs[:, j : j + 1], self.final_ids[j : j + 1],
                         self.final_rank[:, j : j + 1], self.final_prob[:, j : j + 1])

    @staticmethod
    def concat(columns: list["LogitLens"]) -> "LogitLens":
        return LogitLens(*(np.concatenate([getattr(c, f) for c in columns], axis=0 if f == "final_ids" else 1)
                           for f in ("top_ids", "top_probs", "final_ids", "final_rank", "final_prob")))


def positions_per_view(config: ModelConfig) -> int:
    """How many positions the heatmap shows at a time for this model (see FLOPS_PER_VIEW)."""
    flops = 2 * config.num_hidden_layers * config.hidden_size * config.vocab_size
    return int(np.clip(FLOPS_PER_VIEW // flops, MIN_POSITIONS_PER_VIEW, MAX_POSITIONS_PER_VIEW))


def lens_logits(model: Decoder, resid: torch.Tensor) -> torch.Tensor:
    """Final norm then LM head applied to a residual stream (..., D): float32 logits (..., V) on the CPU."""
    with COMPUTE.slot(), torch.inference_mode():
        x = resid.to(model.device, model.dtype)
        return model.lm_head(model.norm(x)).float().cpu()


def logit_lens(model: Decoder, resid_post: torch.Tensor) -> LogitLens:
    """The lens at P positions: resid_post (L, P, D) is the residual stream after each layer there.

    The last layer's lens *is* the model's output (final norm, then LM head), so its argmax is the real prediction
    whose rank is followed. Several layers go through the LM head in one product, which reads its (V, D) weight once
    for them all rather than once per layer (600 MiB for Qwen3's vocabulary), in chunks of about CHUNK_BYTES of logits.
    """
    L, P, _ = resid_post.shape
    per_layer = max(1, CHUNK_BYTES // (4 * P * model.config.vocab_size))
    logits = torch.cat([lens_logits(model, resid_post[i : i + per_layer]) for i in range(0, L, per_layer)])
    final_ids = logits[-1].argmax(-1)  # (P,)
    probs = logits.softmax(-1)  # (L, P, V)
    top = probs.topk(min(TOP, probs.shape[-1]), dim=-1)
    final_logit = logits.gather(-1, final_ids.expand(L, P)[..., None])  # (L, P, 1)
    return LogitLens(
        top_ids=top.indices.numpy(),
        top_probs=top.values.numpy(),
        final_ids=final_ids.numpy(),
        final_rank=((logits > final_logit).sum(-1) + 1).numpy(),
        final_prob=probs.gather(-1, final_ids.expand(L, P)[..., None])[..., 0].numpy(),
    )


def lens_at(t, positions: list[int]) -> LogitLens:
    """The lens of a PromptTrace at `positions`: each position's column computed once per trace, shared by every
    session, so moving the view's window by one position computes one new column."""
    columns: dict[int, LogitLens] = t.memo("logit_lens", dict)
    missing = [p for p in positions if p not in columns]
    if missing:
        layers = range(t.config.num_hidden_layers)
        resid = torch.stack([t[f"layers.{i}.resid_post"][0, missing] for i in layers])  # (L, P, D)
        lens = logit_lens(t.decoder, resid)
        for j, p in enumerate(missing):
            columns[p] = lens.column(j)
    return LogitLens.concat([columns[p] for p in positions])


def settling_layer(ranks: np.ndarray) -> int:
    """The first layer from which the final prediction stays the lens's top guess (rank 1) up to the last layer."""
    ranks = np.asarray(ranks)
    layer = len(ranks) - 1
    while layer > 0 and ranks[layer - 1] == 1:
        layer -= 1
    return layer

"""The logit lens: read the residual stream after every layer as if it were the last one.

Applying the final RMSNorm and the LM head to an intermediate residual stream gives the model's "current guess"
for the next token at that depth. After the last layer the lens is exactly the model's real output.
"""

from dataclasses import dataclass

import numpy as np
import torch

from model import Decoder

TOP = 3  # guesses kept per layer and position (the heatmap shows the first, the hover all three)


@dataclass
class LogitLens:
    top_ids: np.ndarray  # (L, T, TOP) token ids of the most likely next tokens after each layer, best first
    top_probs: np.ndarray  # (L, T, TOP) their probabilities
    final_ids: np.ndarray  # (T,) the model's real prediction at each position (argmax of its logits)
    final_rank: np.ndarray  # (L, T) rank of that prediction after each layer: 1 = the lens's top guess
    final_prob: np.ndarray  # (L, T) its probability after each layer


def lens_logits(model: Decoder, resid: torch.Tensor) -> torch.Tensor:
    """Final norm then LM head applied to a residual stream (..., D): float32 logits (..., V) on the CPU."""
    with torch.inference_mode():
        x = resid.to(model.device, model.dtype)
        return model.lm_head(model.norm(x)).float().cpu()


def logit_lens(model: Decoder, resid_post: list[torch.Tensor], logits: torch.Tensor) -> LogitLens:
    """The lens over layers for one sequence.

    resid_post: one (T, D) residual stream per layer, in layer order (`layers.{i}.resid_post` of row 0).
    logits: the model's real (T, V) logits, whose argmax is the prediction whose rank is followed.
    One layer at a time, so that only one (T, V) block of logits is alive even for a 150k-token vocabulary.
    """
    final_ids = logits.float().argmax(-1)  # (T,)
    top_ids, top_probs, ranks, probs_of_final = [], [], [], []
    for resid in resid_post:
        layer_logits = lens_logits(model, resid)  # (T, V)
        probs = layer_logits.softmax(-1)
        top = probs.topk(min(TOP, probs.shape[-1]), dim=-1)
        top_ids.append(top.indices)
        top_probs.append(top.values)
        final_logit = layer_logits.gather(-1, final_ids[:, None])  # (T, 1)
        ranks.append((layer_logits > final_logit).sum(-1) + 1)
        probs_of_final.append(probs.gather(-1, final_ids[:, None])[:, 0])
    return LogitLens(
        top_ids=torch.stack(top_ids).numpy(),
        top_probs=torch.stack(top_probs).numpy(),
        final_ids=final_ids.numpy(),
        final_rank=torch.stack(ranks).numpy(),
        final_prob=torch.stack(probs_of_final).numpy(),
    )


def settling_layer(ranks: np.ndarray) -> int:
    """The first layer from which the final prediction stays the lens's top guess (rank 1) up to the last layer."""
    ranks = np.asarray(ranks)
    layer = len(ranks) - 1
    while layer > 0 and ranks[layer - 1] == 1:
        layer -= 1
    return layer

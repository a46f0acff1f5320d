"""Activation patching: which activations carry the difference between two prompts.

Run a corrupted prompt (e.g. "The boy went to the park. Then") but paste in one activation from the clean run
("The girl …"), and measure how far the answer moves from the corrupted one (" he") back to the clean one (" she"):
the logit difference of the two answer tokens at the last position, normalised so that 0 is the corrupted run and 1
the clean run. Done for every (layer, position) of the residual stream entering each layer, every (layer, position)
of each MLP's output, and every (layer, query head) of the attention output (the head's z at all positions).

Each patch is an ordinary edit (Edits.replace) at an ordinary capture name. One batched forward per layer and kind:
row b of the batch patches position (or head) b, so a layer's sweep costs one forward of a batch of T (or Hq).
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from model import Decoder, ModelError

from .compute import COMPUTE
from .edits import Edits
from .prompt_trace import PromptTrace
from .trace import edited_logits

KINDS = {"resid_pre": "residual stream entering the layer", "mlp.out": "MLP output", "self_attn.z": "attention head"}


@dataclass(frozen=True)
class PatchRow:
    """An edit for a batch of copies of the corrupted prompt: row b takes the clean run's activation at index b of
    axis 1 (position b of a (B, T, D) stream or MLP output; head b, at every position, of a (B, Hq, T, dh) z)."""

    clean: torch.Tensor  # the clean run's activation, batch 1

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x, rows = x.clone(), torch.arange(x.shape[0])
        x[rows, rows] = self.clean.to(x.device, x.dtype)[0, rows]
        return x


@dataclass(frozen=True)
class Patching:
    clean: float  # logit difference of the answers in the clean run
    corrupted: float  # and in the corrupted run
    results: dict[str, np.ndarray]  # kind -> (layers, T) or (layers, Hq): normalised, 0 corrupted, 1 clean

    def normalise(self, value: float) -> float:
        return (value - self.corrupted) / (self.clean - self.corrupted)


def answer_difference(logits: torch.Tensor, right: int, wrong: int) -> torch.Tensor:
    """(B,) logit of the right answer minus the wrong one at the last position, from (B, 1 or T, V) logits."""
    return logits[:, -1, right] - logits[:, -1, wrong]


def check_pair(model: Decoder, clean: list[int], corrupted: list[int], right: int, wrong: int) -> None:
    if len(clean) != len(corrupted):
        raise ModelError(f"The two prompts are {len(clean)} and {len(corrupted)} tokens long: patching pastes "
                         "position for position, so they must have the same length. Swap words that are one token "
                         "each (the Model page shows how a prompt is cut), or pad the shorter one.")
    if clean == corrupted:
        raise ModelError("The two prompts are the same: there is no difference to trace.")
    V = model.config.vocab_size
    if right == wrong or not (0 <= right < V and 0 <= wrong < V):
        raise ModelError("The two answers must be two different tokens of this model's vocabulary.")
    model.check_input(torch.tensor([clean]), 0)


def patch_sweep(model: Decoder, clean: list[int], corrupted: list[int], right: int, wrong: int,
                kinds=tuple(KINDS), on_layer: Callable[[int, int], None] | None = None) -> Patching:
    """Patch every activation of `kinds` from the clean run into the corrupted one; on_layer(done, total) after
    each batched forward (for a progress bar)."""
    check_pair(model, clean, corrupted, right, wrong)
    config = model.config
    L, T = config.num_hidden_layers, len(clean)
    clean_trace = PromptTrace(model, clean)
    with COMPUTE.slot():
        ends = [float(answer_difference(edited_logits(model, torch.tensor([ids]), Edits()), right, wrong)[0])
                for ids in (clean, corrupted)]
    if abs(ends[0] - ends[1]) < 1e-6:
        raise ModelError("Both prompts give the two answers the same logit difference: there is nothing to restore. "
                         "Pick answers that the two prompts tell apart.")
    batch = {"resid_pre": T, "mlp.out": T, "self_attn.z": config.num_attention_heads}
    results, done, total = {}, 0, L * len(kinds)
    for kind in kinds:
        values = np.zeros((L, batch[kind]))
        for layer in range(L):
            name = f"layers.{layer}.{kind}"
            edits = Edits(replace={name: PatchRow(clean_trace[name])})
            ids = torch.tensor([corrupted] * batch[kind])
            with COMPUTE.slot():
                values[layer] = answer_difference(edited_logits(model, ids, edits), right, wrong).numpy()
            done += 1
            if on_layer:
                on_layer(done, total)
        results[kind] = (values - ends[1]) / (ends[0] - ends[1])
    return Patching(ends[0], ends[1], results)

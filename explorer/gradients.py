"""Gradient flow: one backward pass of the next-token loss on a prompt, read the way a teacher explains training.

- The gradient norm of every parameter group (q/k/v/o, gate/up/down, the two RMSNorm gains, QK-norm gains) by layer.
- The gradient norm of the residual stream at every layer's input and position: how the loss's signal reaches the
  early layers along the residual path, which is why pre-norm decoders train at depth.
- Token saliency: gradient × embedding, each prompt token's first-order share of the loss.

The shared model is never touched: its parameters stay frozen (requires_grad False, as loaded); the backward runs
through torch.func.functional_call on gradient-tracking aliases of them (no copy), inside the compute queue, so no
`.grad` is ever left on the model and no other session's forward runs meanwhile.
"""

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call

from model import Capture, Decoder, ModelError

from .compute import COMPUTE

# Parameter groups of a block, as they appear in its parameter names (layers.{i}.<part>.<group>.weight).
GROUPS = ("q_proj", "k_proj", "v_proj", "o_proj", "q_norm", "k_norm", "gate_proj", "up_proj", "down_proj",
          "input_layernorm", "post_attention_layernorm")


class _StreamKeeper(Capture):
    """Keeps the residual stream at every layer's input (and after the last) and the embeddings, with their
    gradients retained; changes nothing."""

    def __init__(self, last: int):
        self.names = {f"layers.{last}.resid_post", "embed"}
        self.tensors: dict[str, torch.Tensor] = {}

    def wants(self, name: str) -> bool:
        return name in self.names or name.endswith(".resid_pre")

    def __call__(self, name: str, x: torch.Tensor) -> torch.Tensor:
        if self.wants(name):
            x.retain_grad()
            self.tensors[name] = x
        return x


def backward(model: Decoder, ids: list[int]) -> tuple[float, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(loss, {parameter name: gradient}, {stream name: the tensor with its .grad}) of the mean next-token
    cross-entropy over the prompt. Tied weights (a shared embedding and LM head) get one gradient, their sum."""
    if len(ids) < 2:
        raise ModelError("The prompt needs at least two tokens: the loss is the prediction of each next one.")
    input_ids = torch.tensor([ids], device=model.device)
    model.check_input(input_ids, 0)
    keeper = _StreamKeeper(model.config.num_hidden_layers - 1)
    with COMPUTE.slot(), torch.enable_grad():
        # Inside the queue: while another gradient run's functional_call has swapped the model's parameters, its
        # tied embedding and LM head read as two tensors.
        params = {name: p.detach().requires_grad_() for name, p in model.named_parameters()}
        logits = functional_call(model, params, (input_ids,), {"capture": keeper})
        loss = F.cross_entropy(logits[0, :-1].float(), input_ids[0, 1:])
        loss.backward()
    return loss.item(), {name: p.grad.float().cpu() for name, p in params.items()}, keeper.tensors


@dataclass(frozen=True)
class GradientFlow:
    loss: float
    groups: dict[str, np.ndarray]  # group -> (layers,) gradient norm; groups the model lacks are left out
    embedding: float  # gradient norm of the embedding matrix (with the LM head's, where tied)
    final_norm: float
    stream: np.ndarray  # (layers + 1, T): |∂loss/∂stream| at each layer's input, then after the last layer
    saliency: np.ndarray  # (T,): Σ_d ∂loss/∂e_d · e_d for each token's embedding e


def gradient_flow(model: Decoder, ids: list[int]) -> GradientFlow:
    loss, grads, stream = backward(model, ids)
    layers = model.config.num_hidden_layers

    def norm(name: str) -> float:
        return float(grads[name].norm())

    groups = {}
    for group in GROUPS:
        names = [next((n for n in grads if n.startswith(f"layers.{i}.") and f".{group}." in n and n.endswith(
            "weight")), None) for i in range(layers)]
        if all(names):
            groups[group] = np.array([norm(n) for n in names])
    rows = [stream[f"layers.{i}.resid_pre"].grad[0] for i in range(layers)]
    rows.append(stream[f"layers.{layers - 1}.resid_post"].grad[0])
    embed = stream["embed"]
    return GradientFlow(
        loss, groups, norm("embed_tokens.weight"), norm("norm.weight"),
        torch.stack(rows).norm(dim=-1).float().cpu().numpy(),
        (embed.grad[0] * embed[0]).sum(-1).detach().float().cpu().numpy())

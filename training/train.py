"""A plain training loop for the project's own Decoder, watching the largest attention logit as it goes.

The bundled Llama/Qwen3 pair (train_pair.py) and the stability lab page both use it, so a class sees the very
code that made the bundled models.
"""

import math
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from model import Capture, Decoder, ModelConfig


@dataclass(frozen=True)
class TrainSettings:
    steps: int = 600
    lr: float = 3e-3
    batch_size: int = 32
    seq_len: int = 128
    warmup: int = 30  # steps of linear warm-up before the cosine decay
    weight_decay: float = 0.1
    seed: int = 0
    probe_every: int = 1  # measure the largest attention logit every this many steps (it needs the scores)


def model_config(*, qk_norm: bool, hidden: int, layers: int, heads: int, kv_heads: int, context: int,
                 vocab: int = 512) -> ModelConfig:
    """A llama or qwen3 config of the given size; with equal sizes the two differ only in QK-norm."""
    head_dim = hidden // heads
    return ModelConfig.from_dict({
        "model_type": "qwen3" if qk_norm else "llama",
        "vocab_size": vocab,
        "hidden_size": hidden,
        "intermediate_size": 8 * hidden // 3 // 8 * 8,  # SwiGLU's 8/3 · D keeps a 4 · D MLP's parameter count
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "head_dim": head_dim,
        "max_position_embeddings": context,
        "rms_norm_eps": 1e-6,
        "rope_theta": 10000.0,
        "tie_word_embeddings": True,
        "bos_token_id": 1,
        "eos_token_id": 2,
    })


def init_decoder(config: ModelConfig, seed: int) -> Decoder:
    """GPT-2 style initialisation from a seed. Parameters are drawn in name order, skipping the norms (all
    ones), so a llama and a qwen3 model of the same sizes start from identical weights."""
    model = Decoder(config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.fill_(1.0)
                continue
            std = 0.02 / math.sqrt(2 * config.num_hidden_layers) if name.endswith(("o_proj.weight", "down_proj.weight")) else 0.02
            p.copy_(torch.randn(p.shape, generator=generator) * std)
    return model


class LargestLogit(Capture):
    """Records the largest |attention score| of a forward (over layers, heads and unmasked positions)."""

    def __init__(self):
        self.value = 0.0

    def wants(self, name: str) -> bool:
        return name.endswith(".scores")

    def __call__(self, name: str, x: torch.Tensor) -> torch.Tensor:
        if name.endswith(".scores"):
            visible = x.detach().masked_fill(torch.isinf(x), 0.0)
            self.value = max(self.value, visible.abs().max().item())
        return x


def batches(tokens: torch.Tensor, settings: TrainSettings) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Random windows of seq_len + 1 tokens, inputs and next-token targets, from a seeded generator."""
    generator = torch.Generator().manual_seed(settings.seed)
    while True:
        starts = torch.randint(0, len(tokens) - settings.seq_len - 1, (settings.batch_size,), generator=generator)
        windows = torch.stack([tokens[s : s + settings.seq_len + 1] for s in starts.tolist()])
        yield windows[:, :-1], windows[:, 1:]


def learning_rate(step: int, settings: TrainSettings) -> float:
    if step < settings.warmup:
        return settings.lr * (step + 1) / settings.warmup
    progress = (step - settings.warmup) / max(1, settings.steps - settings.warmup)
    return settings.lr * 0.5 * (1 + math.cos(math.pi * progress))


def train(model: Decoder, tokens: torch.Tensor, settings: TrainSettings,
          on_step: Callable[[dict], None] | None = None,
          each_step: Callable[[], AbstractContextManager] = nullcontext) -> list[dict]:
    """AdamW on next-token cross-entropy. Returns one record per step: step, loss, largest attention logit
    (None on steps between probes) and each layer's gradient norm before clipping (absent on a step whose loss was
    not finite). Each step's computation runs inside `each_step()`: on a shared server, the
    compute queue, so that other sessions' forwards run between steps instead of after the whole run.

    A loss that becomes NaN or infinite ends training early: that divergence is what the stability lab shows.
    """
    model.train()
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": settings.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=settings.lr, betas=(0.9, 0.95))
    history = []
    for step, (inputs, targets) in zip(range(settings.steps), batches(tokens, settings)):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, settings)
        probe = LargestLogit() if step % settings.probe_every == 0 else None
        with each_step():
            logits = model(inputs, capture=probe)
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
            record = {"step": step, "loss": loss.item(), "max_logit": probe.value if probe else None}
            if math.isfinite(record["loss"]):
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                record["grad_norms"] = layer_gradient_norms(model)  # before clipping: what the loss asked for
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
        history.append(record)
        if on_step:
            on_step(record)
        if not math.isfinite(record["loss"]):
            break
    return history


def layer_gradient_norms(model: Decoder) -> list[float]:
    """The norm of each block's whole gradient (every parameter of layer i together), after a backward."""
    return [math.sqrt(sum(float(p.grad.pow(2).sum()) for p in block.parameters() if p.grad is not None))
            for block in model.layers]


@torch.no_grad()
def evaluate(model: Decoder, tokens: torch.Tensor, seq_len: int, max_windows: int = 64) -> float:
    """Mean next-token loss over consecutive windows of the held-out tokens."""
    model.eval()
    n = min(max_windows, (len(tokens) - 1) // seq_len)
    windows = tokens[: n * seq_len + 1]
    inputs = windows[:-1].view(n, seq_len)
    targets = windows[1:].view(n, seq_len)
    return F.cross_entropy(model(inputs).flatten(0, 1), targets.flatten()).item()

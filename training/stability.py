"""The stability lab's experiment: two micro models identical but for QK-norm (same initial weights, batches and
optimizer), trained at one peak learning rate. The Stability lab page runs it live; run as a script, it trains at
every learning rate the page offers and prints the README's table:

    python -m training.stability                # 300 steps each, about 4 minutes on 2 cores
"""

import argparse
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

import torch

from .corpus import load_corpus
from .train import TrainSettings, init_decoder, model_config, train

MODELS = {"Llama (no QK-norm)": False, "Qwen3 (QK-norm)": True}  # name -> QK-norm
SIZES = dict(hidden=64, layers=2, heads=4, kv_heads=2, context=64)
LEARNING_RATES = [1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0]
DEFAULT_LR, DEFAULT_STEPS = 1e-1, 300


def lab_settings(lr: float, steps: int) -> TrainSettings:
    return TrainSettings(steps=steps, lr=lr, batch_size=16, seq_len=64, warmup=max(1, steps // 20), probe_every=1)


def train_both(settings: TrainSettings, tokens: torch.Tensor,
               on_step: Callable[[str, int, dict], None] | None = None,
               each_step: Callable[[], AbstractContextManager] = nullcontext) -> dict[str, list[dict]]:
    """Trains the two models one after the other; on_step(name, index of the model, record) after every step."""
    runs = {}
    for index, (name, qk_norm) in enumerate(MODELS.items()):
        model = init_decoder(model_config(qk_norm=qk_norm, **SIZES), seed=settings.seed)
        step_callback = (lambda record, name=name, index=index: on_step(name, index, record)) if on_step else None
        runs[name] = train(model, tokens, settings, on_step=step_callback, each_step=each_step)
    return runs


def main(argv: list[str] | None = None) -> None:
    from explorer.analysis.lab import format_number, run_summary

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    p.add_argument("--lrs", type=float, nargs="+", default=LEARNING_RATES)
    args = p.parse_args(argv)
    tokens = load_corpus()
    print(f"{args.steps} steps per model, {torch.get_num_threads()} torch threads, torch {torch.__version__}")
    names = list(MODELS)
    print("\n| peak lr | " + " | ".join(f"{n.split()[0]} final loss" for n in names) + " | "
          + " | ".join(f"{n.split()[0]} largest attention logit" for n in names) + " | seconds |")
    print("|---" * (2 + 2 * len(names)) + "|")
    for lr in args.lrs:
        began = time.perf_counter()
        summaries = [run_summary(records) for records in train_both(lab_settings(lr, args.steps), tokens).values()]
        label = f"{lr:g}" + (" (default)" if lr == DEFAULT_LR else "")
        cells = [f"{s['final_loss']:.3f}" if s["final_loss"] is not None else "–" for s in summaries]
        cells += [format_number(s["peak_logit"]) for s in summaries]
        print(f"| {label} | " + " | ".join(cells) + f" | {time.perf_counter() - began:.0f} |", flush=True)


if __name__ == "__main__":
    main()

"""How long attribution, patching and a gradient pass take against one forward, on the Qwen3-0.6B shape.

    python -m benchmarks.bench_interpret                 # T = 128, the issue's setting
    python -m benchmarks.bench_interpret --tokens 64 --rounds 5

Each measure is a median over --rounds fresh runs (a new PromptTrace each time, so nothing is reused), and is
printed as a ratio to the median plain forward (logits at the last position) measured in the same run:
- attribution: the page's work once its trace exists, i.e. every layer's z and MLP output on demand and the split;
- gradients: one forward and backward of the next-token loss (explorer.gradients.backward);
- patching, one layer: one batched forward per kind (resid_pre and MLP output: batch T; heads: batch Hq); the full
  sweep is the number of layers times these, reported as such rather than run (at T = 128 it takes hours here).
"""

import argparse
import statistics
import time

import torch

from explorer.attribution import direct_logit_attribution
from explorer.edits import Edits
from explorer.gradients import backward
from explorer.patching import PatchRow, answer_difference
from explorer.prompt_trace import PromptTrace
from explorer.trace import edited_logits
from model import load_model

from .bench_ui import DEFAULT_CHECKPOINT, build_checkpoint


def median_seconds(run, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = load_model(build_checkpoint(DEFAULT_CHECKPOINT))
    config = model.config
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, config.vocab_size, (args.tokens,), generator=generator).tolist()
    other = list(ids)
    other[args.tokens // 2] = (other[args.tokens // 2] + 1) % config.vocab_size
    print(f"Qwen3-0.6B shape, T = {args.tokens}, {args.threads} torch threads, median of {args.rounds}")

    forward = median_seconds(lambda: edited_logits(model, torch.tensor([ids]), Edits()), args.rounds)

    def attribution() -> None:
        t = PromptTrace(model, ids)
        t.base()  # the page has this already: time only what attribution adds
        start = time.perf_counter()
        direct_logit_attribution(t, args.tokens - 1, 0)
        attribution.seconds = time.perf_counter() - start

    attributions = []
    for _ in range(args.rounds):
        attribution()
        attributions.append(attribution.seconds)
    gradients = median_seconds(lambda: backward(model, ids), args.rounds)

    clean = PromptTrace(model, ids)
    layer = config.num_hidden_layers // 2
    per_kind = {}  # kind -> (batch, seconds of its one batched forward)
    for kind, batch in (("resid_pre", args.tokens), ("mlp.out", args.tokens),
                        ("self_attn.z", config.num_attention_heads)):
        name = f"layers.{layer}.{kind}"
        edits = Edits(replace={name: PatchRow(clean[name])})
        per_kind[kind] = batch, median_seconds(lambda: answer_difference(
            edited_logits(model, torch.tensor([other] * batch), edits), 0, 1), 1)
    layers = config.num_hidden_layers

    rows = [("one forward (logits at the last position)", forward),
            ("attribution, after the page's trace", statistics.median(attributions)),
            ("gradient pass (forward + backward)", gradients),
            *((f"patching, one layer of {kind} (batch {batch})", seconds) for kind, (batch, seconds) in per_kind.items()),
            (f"patching sweep over resid_pre ({layers} layers)", layers * per_kind["resid_pre"][1]),
            ("patching sweep, all three kinds", layers * sum(seconds for _, seconds in per_kind.values()))]
    print("\n| measure | seconds | × one forward |\n|---|---|---|")
    for what, seconds in rows:
        print(f"| {what} | {seconds:.2f} | {seconds / forward:.1f} |")


if __name__ == "__main__":
    main()

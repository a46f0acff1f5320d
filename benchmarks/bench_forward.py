"""Time a plain forward (prefill, batch 1) of the project's decoder against transformers (SDPA attention).

Both models hold the same random weights (see benchmarks/common.py), on the same device in the same dtype; the
logits are compared before any timing. Runs are interleaved (ours, transformers, transformers, ours, ...) under
torch.inference_mode after warm-up, each call one torch.utils.benchmark.Timer measurement (which waits for the GPU);
the table shows medians.

    python -m benchmarks.bench_forward                          # SmolLM2-135M shape, T = 128 and 512
    python -m benchmarks.bench_forward --model qwen3-0.6b --tokens 128 512 1024 --repeats 20
    python -m benchmarks.bench_forward --device cpu --dtype bfloat16

Output rows look like "T=128  ours 41.2 ms  transformers 45.0 ms  ratio 0.92" (ratio = ours / transformers; below 1
means ours is faster). The "paired" column is the median of the per-round ratios, which cancels slow drifts of the
machine even better than the ratio of medians.

On a CPU, each T stops after --time-limit seconds (default 60) once 3 rounds are done, so a run stays short (about
1.5 minutes for SmolLM2 on 2 idle cores). On a CPU that other processes keep busy, multi-threaded wall times are
meaningless (threads wait for each other's lost time slices; we saw 0.5 s forwards take 3 to 16 s): use
`--threads 1 --clock cpu`, which times the CPU seconds this process used.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from benchmarks.common import (
    add_run_arguments,
    interleaved_times,
    progress_printer,
    random_ids,
    run_settings,
    same_weights_pair,
    warn_if_busy,
)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_run_arguments(p, repeats_cpu=15, repeats_gpu=50, time_limit_cpu=60.0)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        s = run_settings(args)
    except ValueError as e:
        print(e, file=sys.stderr)
        return 2

    import transformers

    transformers.utils.logging.disable_progress_bar()
    print(f"{args.model}: torch {torch.__version__}, transformers {transformers.__version__}, {s.describe()}",
          flush=True)
    warn_if_busy(s.clock_name)
    t0 = time.perf_counter()
    ours, hf = same_weights_pair(args.model, s.device, s.dtype, seed=args.seed, copy_weights=args.copy_weights)
    vocab = ours.config.vocab_size
    print(f"built both models with the same weights in {time.perf_counter() - t0:.1f} s", flush=True)

    rows = []
    for T in args.tokens:
        ids = random_ids(vocab, T, seed=args.seed, device=s.device)
        fns = {
            "ours": lambda ids=ids: ours(ids),
            "transformers": lambda ids=ids: hf(ids, use_cache=False).logits,
        }

        with torch.inference_mode():
            a, b = fns["ours"]().float(), fns["transformers"]().float()
        diff = (a - b).abs().max().item()
        same_top = (a.argmax(-1) == b.argmax(-1)).float().mean().item()
        print(f"T={T}: logits max abs diff {diff:.3g} (logits up to {b.abs().max().item():.3g}), "
              f"same argmax at {same_top:.1%} of positions", flush=True)
        del a, b

        times = interleaved_times(fns, s.repeats, progress=progress_printer(f"T={T}"), **s.timing_kwargs())
        n = len(times["ours"])
        if n < s.repeats:
            print(f"  T={T}: stopped after {n} rounds (--time-limit {s.time_limit:g} s)", flush=True)
        med = {k: statistics.median(v) for k, v in times.items()}
        paired = statistics.median(o / h for o, h in zip(times["ours"], times["transformers"]))
        rows.append((T, med["ours"], med["transformers"], paired, diff, n))

    print()
    print(f"{args.model}, {s.device} {str(s.dtype).removeprefix('torch.')}, batch 1, medians "
          f"({s.clock_name} clock, {torch.get_num_threads()} threads):")
    for T, o, h, paired, diff, n in rows:
        print(f"T={T:<5d} ours {o * 1e3:8.1f} ms  transformers {h * 1e3:8.1f} ms  ratio {o / h:.2f}  "
              f"(paired {paired:.2f}, n={n}, max abs diff {diff:.2g})")
    print(f"\nREADME row ({s.device} {str(s.dtype).removeprefix('torch.')}, paired ratios, "
          + ", ".join(f"T={T}" for T, *_ in rows) + f"): | plain forward, ours / transformers (sdpa), {args.model} "
          "shape | " + " | ".join(f"{paired:.2f}" for _, _, _, paired, _, _ in rows) + " |")
    warn_if_busy(s.clock_name)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Time a plain forward (prefill, batch 1) of the project's decoder against transformers (SDPA attention).

Both models hold the same random weights (see benchmarks/common.py), on the same device in the same dtype; the
logits are compared before any timing. Runs are interleaved (ours, transformers, transformers, ours, ...) under
torch.inference_mode after warm-up, with torch.cuda.synchronize around each on a GPU; the table shows medians.

    python benchmarks/bench_forward.py                          # SmolLM2-135M shape, T = 128 and 512
    python benchmarks/bench_forward.py --model qwen3-0.6b --tokens 128 512 1024 --repeats 20
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
import os
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make `benchmarks` and `model` importable from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks.common import (
    CONFIGS,
    default_device,
    default_dtype,
    interleaved_times,
    parse_dtype,
    random_ids,
    same_weights_pair,
    synchronize_fn,
)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=sorted(CONFIGS), default="smollm2-135m", help="model shape (random weights)")
    p.add_argument("--device", default=None, help="cuda if available, else cpu")
    p.add_argument("--dtype", default=None, help="bfloat16 on cuda, float32 on cpu")
    p.add_argument("--tokens", type=int, nargs="+", default=[128, 512], help="sequence lengths T (batch 1)")
    p.add_argument("--repeats", type=int, default=None,
                   help="timed runs per model and T (default: 15 on cpu, 50 on a GPU)")
    p.add_argument("--warmup", type=int, default=None,
                   help="untimed runs per model and T first (default: 2 on cpu, 5 on a GPU)")
    p.add_argument("--time-limit", type=float, default=None,
                   help="wall seconds per T after which timing stops early (at least 3 rounds); default 60 on cpu, "
                        "none on a GPU; 0 for none")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                   help="cpu: CPU seconds of this process instead of wall time; steadier on a busy machine, "
                        "meaningful only with --threads 1 and on --device cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--copy-weights", action="store_true",
                   help="copy our loaded weights out of the safetensors memory map into ordinary memory")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device or default_device())
    dtype = parse_dtype(args.dtype) if args.dtype else default_dtype(device)
    on_cpu = device.type == "cpu"
    repeats = args.repeats or (15 if on_cpu else 50)
    warmup = args.warmup if args.warmup is not None else (2 if on_cpu else 5)
    time_limit = args.time_limit if args.time_limit is not None else (60.0 if on_cpu else None)
    time_limit = time_limit or None
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.clock == "cpu" and not (on_cpu and torch.get_num_threads() == 1):
        print("--clock cpu needs --device cpu and --threads 1", file=sys.stderr)
        return 2
    clock = time.process_time if args.clock == "cpu" else time.perf_counter

    import transformers

    transformers.utils.logging.disable_progress_bar()
    print(f"{args.model}: torch {torch.__version__}, transformers {transformers.__version__}, {device} "
          f"{str(dtype).removeprefix('torch.')}, {torch.get_num_threads()} threads, {repeats} repeats after {warmup} "
          f"warm-up runs, {args.clock} clock", flush=True)
    warn_if_busy()
    t0 = time.perf_counter()
    ours, hf = same_weights_pair(args.model, device, dtype, seed=args.seed, copy_weights=args.copy_weights)
    vocab = ours.config.vocab_size
    print(f"built both models with the same weights in {time.perf_counter() - t0:.1f} s", flush=True)

    sync = synchronize_fn(device)
    rows = []
    for T in args.tokens:
        ids = random_ids(vocab, T, seed=args.seed, device=device)
        fns = {"ours": lambda: ours(ids), "transformers": lambda: hf(ids, use_cache=False).logits}

        with torch.inference_mode():
            a, b = fns["ours"]().float(), fns["transformers"]().float()
        diff = (a - b).abs().max().item()
        same_top = (a.argmax(-1) == b.argmax(-1)).float().mean().item()
        print(f"T={T}: logits max abs diff {diff:.3g} (logits up to {b.abs().max().item():.3g}), "
              f"same argmax at {same_top:.1%} of positions", flush=True)
        del a, b

        def progress(done, total, T=T):
            if done == total or done % max(1, total // 5) == 0:
                print(f"  T={T}: {done}/{total}", flush=True)

        times = interleaved_times(
            fns, repeats, warmup=warmup, sync=sync, progress=progress, clock=clock, time_limit=time_limit
        )
        n = len(times["ours"])
        if n < repeats:
            print(f"  T={T}: stopped after {n} rounds (--time-limit {time_limit:g} s)", flush=True)
        med = {k: statistics.median(v) for k, v in times.items()}
        paired = statistics.median(o / h for o, h in zip(times["ours"], times["transformers"]))
        rows.append((T, med["ours"], med["transformers"], paired, diff, n))

    print()
    print(f"{args.model}, {device} {str(dtype).removeprefix('torch.')}, batch 1, medians "
          f"({args.clock} clock, {torch.get_num_threads()} threads):")
    for T, o, h, paired, diff, n in rows:
        print(f"T={T:<5d} ours {o * 1e3:8.1f} ms  transformers {h * 1e3:8.1f} ms  ratio {o / h:.2f}  "
              f"(paired {paired:.2f}, n={n}, max abs diff {diff:.2g})")
    warn_if_busy()
    return 0


def warn_if_busy() -> None:
    """CPU timings mean little when other processes compete for the cores; say so rather than mislead."""
    if not hasattr(os, "getloadavg"):
        return
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if load > 0.75 * cores:
        print(f"warning: load average {load:.1f} on {cores} cores: other processes compete for the CPU, so absolute "
              "times are inflated and noisy, and multi-threaded wall times can be off by several times; "
              "prefer --threads 1 --clock cpu", flush=True)


if __name__ == "__main__":
    sys.exit(main())

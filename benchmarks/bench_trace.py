"""Time a full trace (every name of the capture vocabulary) against a plain forward and transformers' eager forward.

On the same random weights, device and dtype (see benchmarks/common.py), for each T it times, interleaved, after
warm-up, under torch.inference_mode:

    full trace     explorer.trace(ours, ids): capture=None records every name, including each layer's scores and
                   pattern, so attention takes the explicit float32-softmax path
    plain forward  ours(ids): the fused SDPA path, nothing recorded
    hf eager       transformers with attn_implementation="eager" and output_attentions=True,
                   output_hidden_states=True (the closest thing transformers offers to a trace)
    narrow trace   explorer.trace(ours, ids, capture=--narrow), "layers.*.self_attn.pattern" by default: for
                   reference (--narrow "" leaves it out)

On a GPU a trace leaves what it captured on the device until a name is read, as transformers' outputs stay there;
the time to read every name of one full trace to the CPU is printed once, beside the memory.

It prints the medians, the ratios full / plain (target <= 1.3) and full / hf eager (target <= 1.0), the trace's
memory (Trace.nbytes, explorer.estimate_bytes and the bytes its tensors really hold, counting a shared storage once),
and, before any timing, how far the trace's logits are from the plain forward's and its patterns and hidden states
from transformers' attentions and hidden states.

    python -m benchmarks.bench_trace                               # SmolLM2-135M shape, T = 128 and 512
    python -m benchmarks.bench_trace --threads 1 --clock cpu       # on a CPU that other processes keep busy
    python -m benchmarks.bench_trace --model qwen3-0.6b --tokens 256

On a CPU each T stops after --time-limit seconds (default 60) once 3 rounds are done: the default run took 2.5 minutes
with --threads 1 --clock cpu on 2 busy cores, --model qwen3-0.6b 5.5 minutes. The kernel's share of each call (system
time and page faults: a trace writes all it keeps into freshly allocated memory) is printed beside the times;
--keep-freed-memory takes most of it away, to tell it from the trace's own work.
"""

from __future__ import annotations

import argparse
import ctypes
import statistics
import sys
import time

import torch
from torch.utils.benchmark import Timer

from benchmarks.common import (
    add_run_arguments,
    interleaved_times,
    progress_printer,
    random_ids,
    run_settings,
    same_weights_pair,
    warn_if_busy,
)

TARGETS = {"full / plain": 1.3, "full / hf eager": 1.0}
MiB = 2**20


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_run_arguments(p, repeats_cpu=10, repeats_gpu=30)
    p.add_argument("--narrow", default="layers.*.self_attn.pattern",
                   help='capture spec of the reference narrow trace (a glob); "" to leave it out')
    p.add_argument("--keep-freed-memory", action="store_true",
                   help="glibc only: make malloc keep freed memory in the process (mallopt M_TRIM_THRESHOLD and "
                        "M_MMAP_THRESHOLD), so that each trace reuses the pages of the previous one instead of "
                        "faulting in fresh ones: separates the kernel's page-fault time from the trace's own work")
    return p.parse_args(argv)


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory: no trimming of the heap below 2 GiB of free space at its top, and
    blocks up to 32 MiB (glibc's largest mmap threshold) from the heap rather than from fresh mmaps. Process-wide;
    False where it could not be set (not glibc)."""
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1)) and bool(libc.mallopt(M_MMAP_THRESHOLD, 32 * MiB))


def with_kernel_cost(fn, costs: list):
    """fn, appending (system CPU seconds, minor page faults) of each call to `costs`: the kernel's share of the time,
    mostly first touches of freshly mapped pages, which --clock cpu (user + system time) and the wall clock both
    count. Without getrusage (not Unix) fn itself."""
    try:
        import resource
    except ImportError:
        return fn

    def run():
        before = resource.getrusage(resource.RUSAGE_SELF)
        result = fn()
        after = resource.getrusage(resource.RUSAGE_SELF)
        costs.append((after.ru_stime - before.ru_stime, after.ru_minflt - before.ru_minflt))
        return result

    return run


def held_bytes(tensors) -> int:
    """Bytes of the distinct storages behind `tensors` (resid_post of a layer is the next layer's resid_pre)."""
    storages = {}
    for t in tensors:
        s = t.untyped_storage()
        storages[s.data_ptr()] = s.nbytes()
    return sum(storages.values())


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.float().cpu() - b.float().cpu()).abs().max().item()


def check(ours, hf, ids, narrow: str) -> dict:
    """Correctness and memory, once per T before timing: the numbers printed beside the times."""
    import explorer

    with torch.inference_mode():
        t = explorer.trace(ours, ids)
        plain = ours(ids)
        out = hf(ids, use_cache=False, output_attentions=True, output_hidden_states=True)
    c, T = ours.config, ids.shape[1]
    L = c.num_hidden_layers
    # On a GPU a trace's tensors stay on the device until read: time reading all of them once, for the record.
    read_all = Timer("for name in t.names(): t[name]", globals={"t": t}).timeit(1).median
    info = {
        "read all": read_all,
        "logits vs plain": max_diff(t["logits"], plain),
        "logits vs hf": max_diff(t["logits"], out.logits),
        "pattern vs hf": max(max_diff(t[f"layers.{i}.self_attn.pattern"], out.attentions[i]) for i in range(L)),
        "resid_pre vs hf": max(max_diff(t[f"layers.{i}.resid_pre"], out.hidden_states[i]) for i in range(L)),
        "names": len(t.names()),
        "nbytes": t.nbytes(),
        "estimate": explorer.estimate_bytes(c, T, storage_dtype=torch.float32),
        "held": held_bytes(t.tensors.values()),
        "hf outputs": held_bytes([*out.attentions, *out.hidden_states, out.logits]),
    }
    del t, out
    if narrow:
        with torch.inference_mode():
            n = explorer.trace(ours, ids, capture=narrow)
        info["narrow nbytes"] = n.nbytes()
        info["narrow estimate"] = explorer.estimate_bytes(c, T, narrow)
    return info


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        s = run_settings(args)
    except ValueError as e:
        print(e, file=sys.stderr)
        return 2
    if args.keep_freed_memory and not keep_freed_memory():
        print("--keep-freed-memory: mallopt is not available (not glibc)", file=sys.stderr)
        return 2

    import transformers

    import explorer

    transformers.utils.logging.disable_progress_bar()
    print(f"{args.model}: torch {torch.__version__}, transformers {transformers.__version__}, {s.describe()}",
          flush=True)
    warn_if_busy(s.clock_name)
    t0 = time.perf_counter()
    ours, hf = same_weights_pair(args.model, s.device, s.dtype, seed=args.seed, attn_implementation="eager",
                                 copy_weights=args.copy_weights)
    assert hf.config._attn_implementation == "eager", hf.config._attn_implementation
    print(f"built both models with the same weights in {time.perf_counter() - t0:.1f} s "
          f"(transformers: attn_implementation={hf.config._attn_implementation!r})"
          + ("; malloc keeps freed memory" if args.keep_freed_memory else ""), flush=True)

    results = []
    for T in args.tokens:
        ids = random_ids(ours.config.vocab_size, T, seed=args.seed, device=s.device)
        info = check(ours, hf, ids, args.narrow)
        print(f"T={T}: trace of {info['names']} names: logits max abs diff {info['logits vs plain']:.2g} vs the plain "
              f"forward, {info['logits vs hf']:.2g} vs transformers; patterns {info['pattern vs hf']:.2g} and "
              f"resid_pre {info['resid_pre vs hf']:.2g} vs transformers' attentions and hidden states", flush=True)
        print(f"  memory: Trace.nbytes {info['nbytes'] / MiB:.1f} MiB, estimate_bytes {info['estimate'] / MiB:.1f} "
              f"MiB, distinct storages {info['held'] / MiB:.1f} MiB (transformers' outputs "
              f"{info['hf outputs'] / MiB:.1f} MiB)"
              + (f"; narrow {args.narrow!r}: {info['narrow nbytes'] / MiB:.1f} MiB "
                 f"(estimate {info['narrow estimate'] / MiB:.1f})" if args.narrow else ""), flush=True)
        if s.device.type != "cpu":
            print(f"  reading every name of the full trace (to CPU float32 tensors) took {info['read all'] * 1e3:.0f} "
                  "ms once: the trace call leaves them on the device, and a view reads only the names it shows",
                  flush=True)

        fns = {
            "full trace": lambda ids=ids: explorer.trace(ours, ids),
            "plain forward": lambda ids=ids: ours(ids),
            "hf eager": lambda ids=ids: hf(ids, use_cache=False, output_attentions=True, output_hidden_states=True),
        }
        if args.narrow:
            fns["narrow trace"] = lambda ids=ids: explorer.trace(ours, ids, capture=args.narrow)
        costs = {name: [] for name in fns}
        fns = {name: with_kernel_cost(fn, costs[name]) for name, fn in fns.items()}
        times = interleaved_times(fns, s.repeats, progress=progress_printer(f"T={T}"), **s.timing_kwargs())
        n = len(times["full trace"])
        if n < s.repeats:
            print(f"  T={T}: stopped after {n} rounds (--time-limit {s.time_limit:g} s)", flush=True)
        info["kernel"] = {name: c[-n:] for name, c in costs.items() if c}  # the timed calls, not the warm-up
        results.append((T, times, info))

    print()
    print(f"{args.model}, {s.device} {str(s.dtype).removeprefix('torch.')}, batch 1, medians ({s.clock_name} clock, "
          f"{torch.get_num_threads()} threads{', malloc keeps freed memory' if args.keep_freed_memory else ''}); "
          "ratio (paired = median of per-round ratios):")
    readme: dict[str, list[str]] = {}  # row label -> a paired ratio per T
    for T, times, info in results:
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"T={T:<5d} " + "  ".join(f"{k} {v * 1e3:.1f} ms" for k, v in med.items())
              + f"  (n={len(times['full trace'])})")
        pairs = {"full / plain": ("full trace", "plain forward"), "full / hf eager": ("full trace", "hf eager")}
        if "narrow trace" in times:
            pairs["narrow / plain"] = ("narrow trace", "plain forward")
        for label, (a, b) in pairs.items():
            ratio = med[a] / med[b]
            paired = statistics.median(x / y for x, y in zip(times[a], times[b]))
            target = TARGETS.get(label)
            verdict = "" if target is None else f"  target <= {target:g}: {'met' if paired <= target else 'MISSED'}"
            print(f"        {label:<15} {ratio:.2f}  (paired {paired:.2f}){verdict}")
            readme.setdefault(label, []).append(f"{paired:.2f}")
        print(f"        trace memory {info['nbytes'] / MiB:.0f} MiB (estimate_bytes {info['estimate'] / MiB:.0f} MiB, "
              f"distinct {info['held'] / MiB:.0f} MiB); logits vs plain forward max abs diff "
              f"{info['logits vs plain']:.2g}")
        if info["kernel"]:
            print("        kernel time per call (median; page faults): " + ", ".join(
                f"{k} {statistics.median(c[0] for c in cs) * 1e3:.0f} ms "
                f"({statistics.median(c[1] for c in cs):.0f})" for k, cs in info["kernel"].items()))
    print(f"\nREADME rows ({s.device} {str(s.dtype).removeprefix('torch.')}, paired ratios, "
          + ", ".join(f"T={T}" for T, _, _ in results) + "):")
    for label, cells in readme.items():
        print(f"| {label}, {args.model} | " + " | ".join(cells) + " |")
    warn_if_busy(s.clock_name)
    return 0


if __name__ == "__main__":
    sys.exit(main())

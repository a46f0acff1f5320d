"""Stability-lab numbers: what each training run did, as facts, table rows and plain sentences.

A run is a list of records {"step", "loss", "max_logit"} as training.train.train returns them; a diverged run ends
with a non-finite loss (training stops there).
"""

import math

LEARNED = 0.05  # nats per token: a run that lowered its loss by less than this did not learn


def diverged_at(records: list[dict]) -> int | None:
    """The step where the loss became NaN or infinite, or None if it never did."""
    return next((r["step"] for r in records if not math.isfinite(r["loss"])), None)


def run_summary(records: list[dict]) -> dict:
    """Facts of one run: steps run, first/final/lowest loss, the step where the loss became NaN or infinite (None
    if it never did) and the peak largest attention logit with its step (None if no step was probed)."""
    losses = [r["loss"] for r in records]
    finite = [x for x in losses if math.isfinite(x)]
    probed = [r for r in records if r["max_logit"] is not None and math.isfinite(r["max_logit"])]
    peak = max(probed, key=lambda r: r["max_logit"], default=None)
    return {
        "steps_run": len(records),
        "first_loss": losses[0] if losses else None,
        "final_loss": finite[-1] if finite else None,
        "lowest_loss": min(finite, default=None),
        "diverged_at": diverged_at(records),
        "peak_logit": peak["max_logit"] if peak else None,
        "peak_logit_step": peak["step"] if peak else None,
    }


def format_number(x: float | None) -> str:
    """Three significant digits, without the e+03 notation that students read less easily."""
    if x is None:
        return "–"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.3g}" if abs(x) >= 1e-3 else f"{x:.1e}"


def summary_rows(summaries: dict[str, dict]) -> list[dict]:
    """One table row per model from run_summary's facts, as readable text."""
    return [{
        "model": name,
        "steps run": s["steps_run"],
        "loss at step 0": format_number(s["first_loss"]),
        "final loss": format_number(s["final_loss"]),
        "lowest loss": format_number(s["lowest_loss"]),
        "loss became NaN/∞": "no" if s["diverged_at"] is None else f"at step {s['diverged_at']}",
        "peak attention logit": "–" if s["peak_logit"] is None
        else f"{format_number(s['peak_logit'])} (step {s['peak_logit_step']})",
    } for name, s in summaries.items()]


def what_happened(summaries: dict[str, dict], steps: int) -> list[str]:
    """Plain sentences about each run and how the two compare, read off the numbers (nothing is assumed)."""
    sentences = []
    for name, s in summaries.items():
        if s["diverged_at"] is not None:
            outcome = f"diverged: its loss became NaN or infinite at step {s['diverged_at']}, and training stopped"
        elif s["final_loss"] > s["first_loss"] - LEARNED:
            outcome = (f"did not learn: its loss went from {s['first_loss']:.3g} to {s['final_loss']:.3g} "
                       f"in {steps} steps")
        else:
            outcome = (f"trained all {steps} steps, lowering its loss from {s['first_loss']:.3g} to "
                       f"{s['final_loss']:.3g}")
        peak = "" if s["peak_logit"] is None else \
            f"; its largest attention logit peaked at {format_number(s['peak_logit'])} (step {s['peak_logit_step']})"
        sentences.append(f"**{name}** {outcome}{peak}.")
    if len(summaries) == 2:
        (name_a, a), (name_b, b) = summaries.items()
        if a["peak_logit"] and b["peak_logit"]:
            high, low = (name_a, name_b) if a["peak_logit"] >= b["peak_logit"] else (name_b, name_a)
            ratio = max(a["peak_logit"], b["peak_logit"]) / min(a["peak_logit"], b["peak_logit"])
            sentences.append(f"The peak attention logit of {high} was {format_number(ratio)}× that of {low}.")
        if a["diverged_at"] is None and b["diverged_at"] is None and a["final_loss"] != b["final_loss"]:
            better = name_a if a["final_loss"] < b["final_loss"] else name_b
            gap = abs(a["final_loss"] - b["final_loss"])
            sentences.append(f"Neither diverged; {better} ended with the lower loss, by {gap:.3g} nats per token.")
    return sentences


def gradient_depth_ratio(records: list[dict]) -> float | None:
    """At the last step with gradients, the first layer's gradient norm over the last layer's: about 1 when the
    residual path carries the signal down evenly; None without gradients."""
    norms = next((r["grad_norms"] for r in reversed(records) if "grad_norms" in r), None)
    if not norms or norms[-1] == 0:
        return None
    return norms[0] / norms[-1]


def depth_sentence(ratios: dict[str, float | None]) -> str:
    """What the first-to-last layer gradient ratios at the final step say, worded from them."""
    known = {name: ratio for name, ratio in ratios.items() if ratio is not None}
    if not known:
        return "No step had a finite loss, so there are no gradients to compare."
    listed = "; ".join(f"{name} {ratio:.2g}×" for name, ratio in known.items())
    faded = [name for name, ratio in known.items() if ratio < 0.5]
    verdict = (f"the signal had faded by the first layer in {', '.join(faded)}" if faded else
               "the residual path delivers the loss's signal to the bottom of the stack without it fading")
    return f"At the last step, the first layer's gradient norm against the last layer's: {listed}: {verdict}."

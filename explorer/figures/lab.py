"""Stability-lab figures: per-step training curves of two models, and the numbers and sentences that summarise
each run.

A run is a list of records {"step", "loss", "max_logit"} as training.train.train returns them. A diverged run ends
with a non-finite loss (training stops there); plotly cannot draw NaN or infinity, so a curve simply stops and a
dashed vertical line marks the step where it diverged.
"""

import math

import numpy as np
import plotly.graph_objects as go

from .common import style

PALETTE = ["#e8590c", "#1c7ed6"]  # first model orange, second blue, on every chart
LOSS_SPIKE = 3.0  # a loss above this many times the first one gets a log axis
LEARNED = 0.05  # nats per token: a run that lowered its loss by less than this did not learn


def run_summary(records: list[dict]) -> dict:
    """Facts of one run: steps run, first/final/lowest loss, the step where the loss became NaN or infinite (None
    if it never did) and the peak largest attention logit with its step (None if no step was probed)."""
    losses = [r["loss"] for r in records]
    finite = [x for x in losses if math.isfinite(x)]
    diverged_at = next((r["step"] for r in records if not math.isfinite(r["loss"])), None)
    probed = [r for r in records if r["max_logit"] is not None and math.isfinite(r["max_logit"])]
    peak = max(probed, key=lambda r: r["max_logit"], default=None)
    return {
        "steps_run": len(records),
        "first_loss": losses[0] if losses else None,
        "final_loss": finite[-1] if finite else None,
        "lowest_loss": min(finite, default=None),
        "diverged_at": diverged_at,
        "peak_logit": peak["max_logit"] if peak else None,
        "peak_logit_step": peak["step"] if peak else None,
    }


def per_step_chart(runs: dict[str, list[dict]], field: str, *, title: str, y_title: str, total_steps: int,
                   log_y: bool = False) -> go.Figure:
    """One line per model of `field` ("loss" or "max_logit") against the training step.

    The x axis spans all `total_steps` from the start, so that a chart redrawn while training runs does not
    rescale: the lines grow from left to right.
    """
    fig = go.Figure()
    # Divergence labels go left of the first model's line and right of the second's, so that two runs that
    # diverge at nearby steps do not print over each other.
    for colour, side, (name, records) in zip(PALETTE, ["top left", "top right"], runs.items()):
        steps = [r["step"] for r in records if r[field] is not None]
        values = np.array([r[field] for r in records if r[field] is not None], dtype=float)
        values[~np.isfinite(values)] = np.nan  # a gap, not a crash in the JSON encoder
        if log_y:
            values[values <= 0] = np.nan
        fig.add_trace(go.Scatter(x=steps, y=values, mode="lines", name=name, line=dict(color=colour, width=2),
                                 hovertemplate=f"{name}<br>step %{{x}}<br>{y_title} %{{y:.4g}}<extra></extra>"))
        diverged_at = run_summary(records)["diverged_at"]
        if diverged_at is not None:
            fig.add_vline(x=diverged_at, line=dict(color=colour, dash="dash", width=1.5),
                          annotation=dict(text=f"{name}: loss NaN/∞ at step {diverged_at}", font_color=colour),
                          annotation_position=side)
    fig.update_xaxes(title_text="training step", range=[0, max(1, total_steps - 1)])
    # On a log axis, label only the powers of ten: plotly's default also labels 2 and 5 of every decade, which
    # crowds the axis once the logits span several decades.
    fig.update_yaxes(title_text=y_title + (" (log scale)" if log_y else ""), type="log" if log_y else "linear",
                     dtick=1 if log_y else None)
    fig.update_layout(showlegend=True, legend=dict(orientation="h", yanchor="bottom", y=1.0, x=1, xanchor="right"))
    return style(fig, title=title, height=400)


def loss_chart(runs: dict[str, list[dict]], total_steps: int) -> go.Figure:
    """Linear while the losses stay near where they started; a log axis once a loss spike would flatten the rest."""
    finite = [r["loss"] for records in runs.values() for r in records if math.isfinite(r["loss"])]
    spiked = bool(finite) and max(finite) > LOSS_SPIKE * finite[0]
    return per_step_chart(runs, "loss", title="Training loss per step",
                          y_title="cross-entropy loss (nats per token)", total_steps=total_steps, log_y=spiked)


def logit_chart(runs: dict[str, list[dict]], total_steps: int) -> go.Figure:
    return per_step_chart(runs, "max_logit", title="Largest attention logit per step (any layer, head and position)",
                          y_title="largest |q·k/√dh|", total_steps=total_steps, log_y=True)


def _number(x: float | None) -> str:
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
        "loss at step 0": _number(s["first_loss"]),
        "final loss": _number(s["final_loss"]),
        "lowest loss": _number(s["lowest_loss"]),
        "loss became NaN/∞": "no" if s["diverged_at"] is None else f"at step {s['diverged_at']}",
        "peak attention logit": "–" if s["peak_logit"] is None
        else f"{_number(s['peak_logit'])} (step {s['peak_logit_step']})",
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
            f"; its largest attention logit peaked at {_number(s['peak_logit'])} (step {s['peak_logit_step']})"
        sentences.append(f"**{name}** {outcome}{peak}.")
    if len(summaries) == 2:
        (name_a, a), (name_b, b) = summaries.items()
        if a["peak_logit"] and b["peak_logit"]:
            high, low = (name_a, name_b) if a["peak_logit"] >= b["peak_logit"] else (name_b, name_a)
            ratio = max(a["peak_logit"], b["peak_logit"]) / min(a["peak_logit"], b["peak_logit"])
            sentences.append(f"The peak attention logit of {high} was {_number(ratio)}× that of {low}.")
        if a["diverged_at"] is None and b["diverged_at"] is None and a["final_loss"] != b["final_loss"]:
            better = name_a if a["final_loss"] < b["final_loss"] else name_b
            gap = abs(a["final_loss"] - b["final_loss"])
            sentences.append(f"Neither diverged; {better} ended with the lower loss, by {gap:.3g} nats per token.")
    return sentences

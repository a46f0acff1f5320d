"""Lesson: RMSNorm vs LayerNorm. The claimed saving, timed on this machine, and what LayerNorm would subtract."""

import streamlit as st

from explorer.analysis import lessons as analysis
from explorer.analysis import norms as norms_analysis
from explorer.app_state import current, show
from explorer.figures import lessons as figures
from explorer.lesson_ui import claim, lesson_title

NORM_SIZE = dict(batch=8, tokens=512, dim=512, iterations=100)
TIMING = "lesson_rmsnorm.timing"  # (device and dtype, NormTiming) of the last press of the button

session = current()
config, tokens, model = session.model.config, session.tokens, session.model
L = config.num_hidden_layers


@st.fragment
def timing_experiment() -> None:
    device, dtype = model.device, model.dtype
    shape = f"B={NORM_SIZE['batch']}, T={NORM_SIZE['tokens']}, D={NORM_SIZE['dim']}"
    where = f"{device.type} ({str(dtype).removeprefix('torch.')})"
    if st.button(
        f"Time both on {where}: {shape}, {NORM_SIZE['iterations']} forwards × 3 repeats", icon=":material/timer:"
    ):
        with st.spinner("Timing… (the whole run takes a few seconds to half a minute on a CPU)"):
            st.session_state[TIMING] = (where, analysis.time_norms(**NORM_SIZE, device=device, dtype=dtype))
    measured = st.session_state.get(TIMING)
    if measured is None or measured[0] != where:
        st.caption(
            "Press the button to measure on the sidebar's device (10 untimed warm-up forwards first; the "
            "median of three repeats is shown)."
        )
        return
    timing = measured[1]
    left, middle, right = st.columns(3)
    left.metric("torch.nn.LayerNorm (one kernel)", f"{timing.layernorm_ms:.3g} ms")
    middle.metric("torch.nn.RMSNorm (built-in)", f"{timing.builtin_rmsnorm_ms:.3g} ms",
                  delta=analysis.speed_against(timing.builtin_rmsnorm_ms, timing.layernorm_ms), delta_color="off",
                  delta_arrow="off")
    right.metric("model.norm.RMSNorm (this project's)", f"{timing.rmsnorm_ms:.3g} ms",
                 delta=analysis.speed_against(timing.rmsnorm_ms, timing.layernorm_ms), delta_color="off",
                 delta_arrow="off")
    show(
        figures.norm_timing_bar(
            ["torch.nn.LayerNorm", "model.norm.RMSNorm (project)", "torch.nn.RMSNorm (built-in)"],
            [timing.layernorm_ms, timing.rmsnorm_ms, timing.builtin_rmsnorm_ms],
            shape=shape,
            device=where,
        ),
        key="lesson_rmsnorm.timing",
    )
    st.markdown(
        analysis.norm_timing_verdict(timing) + " The claim counts arithmetic: RMSNorm skips the mean and the bias, a saving "
        "that shows when both norms run as one fused kernel each, as in GPU training code. A forward's time also "
        "depends on how often the tensor travels through memory: torch.nn.LayerNorm is one dedicated kernel on every "
        "device, while the project's RMSNorm is written as separate PyTorch operations (square, mean, rsqrt, two "
        "multiplications) for readability, each a full pass over the tensor. Whether torch.nn.RMSNorm runs as one "
        "kernel depends on the device and the PyTorch version; the measurement above shows what it does here. "
        "Inside a whole model normalisation is usually a small share of the time, so even a real saving changes the "
        "total little."
    )


lesson_title("RMSNorm vs LayerNorm", session.choice.source)
st.markdown(
    "Before attention and before the MLP, each token's vector is normalised so that its size stays under "
    "control. **LayerNorm** subtracts the vector's mean, divides by its standard deviation, then multiplies by a "
    "learned gain and adds a learned bias. **RMSNorm**, used by Llama and Qwen, skips the mean and the bias: it "
    "divides by the root-mean-square and multiplies by the gain. When a vector's mean is close to 0 the two "
    "do the same thing, and RMSNorm needs one reduction less."
)
claim("RMSNorm saves 7–10% of compute over LayerNorm.",
      "Zhang and Sennrich (2019), Root Mean Square Layer Normalization, who measured 7% to 64% less running "
      "time than LayerNorm across their models; Ba et al. (2016), Layer Normalization")
timing_experiment()
st.subheader("In the loaded model: what LayerNorm would subtract")
st.caption(
    "Each cell is the mean of a residual vector divided by its RMS, at the input of every block and after "
    "the last. Where it is near 0, subtracting the mean (the step LayerNorm adds) would change little; a "
    "model trained with RMSNorm simply learns to work with whatever mean its vectors carry."
)
t = session.trace()
stream, depths = norms_analysis.residual_stream(t)
show(figures.mean_over_rms_heatmap(analysis.mean_over_rms(stream), depths, tokens), key="lesson_rmsnorm.norm_scale")

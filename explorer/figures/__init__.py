"""Plotly figure builders: arrays in, go.Figure out, no Streamlit calls, so each is unit-tested on small arrays."""

"""Numbers for the pages, computed from a Trace or plain tensors: no Streamlit, no plotting."""

"""Small models trained offline by the project: the bundled Llama/Qwen3 pair and the stability lab's micro models."""

"""affect_mllm/models."""

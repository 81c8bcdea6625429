"""affect_mllm/adapters."""

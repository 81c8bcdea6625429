"""data_synthesis."""

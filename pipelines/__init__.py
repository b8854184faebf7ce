"""Refinery's methods as plain Python: configs, LLM backends and pipelines. Never imports Django."""

"""LLM backends behind one interface; import a backend's module to load it (they pull in torch or httpx)."""

from pipelines.llm.types import Completion, Conversation, LLMBackend, Message, SamplingParams

__all__ = ["Completion", "Conversation", "LLMBackend", "Message", "SamplingParams"]

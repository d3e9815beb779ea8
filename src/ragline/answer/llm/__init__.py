"""Language models: the ``LLM`` protocol, the OpenAI-compatible client, failover."""

from ragline.answer.llm.base import LLM, Completion, Message, Stream, Usage

__all__ = ["LLM", "Completion", "Message", "Stream", "Usage"]

"""Answers: language models with failover, prompts, citations, the extractive answerer."""

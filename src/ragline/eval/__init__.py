"""Evaluation of retrieval (BEIR-format datasets) with standard ranking metrics."""

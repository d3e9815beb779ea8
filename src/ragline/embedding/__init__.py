"""Embedders: the ``Embedder`` protocol (``base``), a local sentence-transformers model
(``local``), an OpenAI-compatible server (``openai``), the embedding cache and the
batching of concurrent calls; ``factory.get_embedder`` builds the configured one."""

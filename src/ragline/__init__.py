"""ragline: a RAG service that keeps a knowledge base fresh in PostgreSQL + pgvector."""

__version__ = "0.1.0"

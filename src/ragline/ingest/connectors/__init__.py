"""Connectors: where documents come from. The contract is in ``base`` (items, changes,
sources) and ``kinds`` (configurable kinds and what they are built with); each kind of
source is one module, or one package with a ``kind`` module."""

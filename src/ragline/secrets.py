"""Secrets stay out of stored configurations.

A configuration names the environment variable that holds a secret (``password_env:
DB_PASSWORD``); ``check_no_secrets`` refuses one that holds a secret in clear, and
``secret`` reads the named variable when the source runs::

    check_no_secrets({"url": "postgresql://app@db/app", "password_env": "APP_DB_PASSWORD"})
    password = secret(config.password_env, "source 'crm'")
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ragline.errors import ConfigurationError

# Keys that name a secret: "password", "access_token", "secret_access_key", "apikey"...
_SECRET_KEY = re.compile(
    r"(^|_)(password|passwd|pwd|secret|token|api_?key|credentials?)($|_)", re.IGNORECASE
)


def check_no_secrets(config: Mapping[str, Any], path: str = "") -> None:
    """Refuse a configuration that holds a secret in clear: a key that names one
    (password, token...) must end in ``_env`` and name an environment variable, and
    a URL must not carry a password."""
    for key, value in config.items():
        where = f"{path}{key}"
        if isinstance(value, Mapping):
            check_no_secrets(value, f"{where}.")
            continue
        if _SECRET_KEY.search(key) and not key.endswith("_env") and value not in (None, ""):
            raise ConfigurationError(
                f"{where} looks like a secret; store it in an environment variable and "
                f"set {key}_env to that variable's name instead"
            )
        if isinstance(value, str) and "://" in value:
            try:
                password = urlsplit(value).password
            except ValueError:
                password = None
            if password:
                raise ConfigurationError(
                    f"{where} carries a password; put the whole URL in an environment "
                    f"variable and set {key}_env to its name"
                )


def secret(variable: str | None, what: str) -> str | None:
    """The value of the environment variable ``variable`` names (None when no variable
    is named); a named variable that is not set is an error."""
    if not variable:
        return None
    value = os.environ.get(variable)
    if value is None:
        raise ConfigurationError(f"{what}: the environment variable {variable} is not set")
    return value

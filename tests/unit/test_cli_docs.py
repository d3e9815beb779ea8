from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CLI_DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def test_cli_reference_is_generated_from_the_cli() -> None:
    generated = subprocess.run(
        [sys.executable, "-m", "typer", "ragline.cli", "utils", "docs", "--name", "ragline"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert generated.strip() == CLI_DOCS.read_text().strip(), "run `make docs`"

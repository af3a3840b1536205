"""The vault's import boundary: arrows go gateway -> vault, never back."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

VAULT = Path(__file__).resolve().parents[2] / "vault"
FORBIDDEN = {"gateway", "sandbox", "egress", "bootstrap"}


def imported_top_levels(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_vault_modules_import_nothing_of_the_gateway() -> None:
    modules = sorted(VAULT.glob("*.py"))
    assert len(modules) >= 6
    for module in modules:
        assert not imported_top_levels(module) & FORBIDDEN, module.name


def test_importing_the_vault_loads_no_other_package_of_ours() -> None:
    code = "import sys, vault, vault.cli; print(sorted({m.split('.')[0] for m in sys.modules}))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=VAULT.parent
    ).stdout
    for name in FORBIDDEN:
        assert f"'{name}'" not in loaded

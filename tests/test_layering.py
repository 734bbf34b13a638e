"""Architecture rules: mediafm_core never imports dagster; the CLI starts without heavy imports."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_core_never_imports_dagster():
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "mediafm_core").rglob("*.py")
        if {"dagster", "dagster_aws", "dagster_pipes", "dagster_k8s"} & _imported_modules(p)
    ]
    assert offenders == []


def test_cli_help_imports_no_heavy_libraries():
    code = (
        "import sys; from mediafm_core.cli import build_parser; build_parser(); "
        "heavy = {'torch', 'open_clip', 'transformers', 'lancedb', 'sentence_transformers', "
        "'cv2', 'dagster', 'sklearn'}; print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

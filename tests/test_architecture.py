"""The architecture holds: import-linter's contracts (pyproject.toml, [tool.importlinter]) and
no private name imported across modules.

lint-imports reads the package's file tree, while the editable install maps
``rram_cosim.<folder>`` onto the top-level folders; each check therefore runs on a copy laid
out as installed (``rram_cosim/models``, ...), in a subprocess whose working directory holds
that copy.
"""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("models", "netlists", "cosim", "analysis")


def installed_layout(dest: Path) -> Path:
    """Copy the package to ``dest/rram_cosim`` with each folder as its subpackage."""
    pkg = dest / "rram_cosim"
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "rram_cosim", pkg, ignore=skip)
    for folder in FOLDERS:
        shutil.copytree(ROOT / folder, pkg / folder, ignore=skip)
    return pkg


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    """lint-imports with the project's contracts, run where ``cwd/rram_cosim`` is found first."""
    code = "from importlinter.cli import lint_imports_command; lint_imports_command()"
    return subprocess.run([sys.executable, "-c", code, str(ROOT / "pyproject.toml"), "--no-cache"],
                          cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    base = tmp_path_factory.mktemp("layout")
    installed_layout(base)
    return base


def test_import_contracts_are_kept(layout):
    res = lint_imports(layout)
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-2000:]
    assert "0 broken" in res.stdout
    assert " kept" in res.stdout


@pytest.mark.parametrize(("path", "line", "contract"), [
    # a task that reaches up into the command line, even inside a function
    ("cosim/tasks/classify.py", "def _up():\n    from ..cli import runs  # noqa\n",
     "cli -> tasks"),
    # a command that skips the tasks layer (a type-checking import counts too)
    ("cosim/cli/commands/tile.py",
     "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ...spice import runner  # noqa\n",
     "commands import only tasks, analysis, models and cli.runs"),
    # one command importing another
    ("cosim/cli/commands/tile.py", "from . import calibrate  # noqa\n",
     "commands are independent of each other"),
    # analysis importing beyond models
    ("analysis/stats.py", "from ..cosim.engines import registry  # noqa\n",
     "analysis imports only models"),
])
def test_a_forbidden_import_breaks_a_contract(tmp_path, path, line, contract):
    pkg = installed_layout(tmp_path)
    with open(pkg / path, "a") as f:
        f.write("\n" + line)
    res = lint_imports(tmp_path)
    assert res.returncode != 0, res.stdout[-3000:]
    assert f"{contract}" in res.stdout and "BROKEN" in res.stdout


def _our_module(node: ast.ImportFrom) -> bool:
    return node.level > 0 or (node.module or "").split(".")[0] == "rram_cosim"


def private_imports(root: Path = ROOT) -> list[str]:
    """``from <one of our modules> import _name`` anywhere in the package (dunders allowed)."""
    out = []
    for folder in (*FOLDERS, "rram_cosim"):
        for path in sorted((root / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and _our_module(node):
                    for alias in node.names:
                        name = alias.name
                        if name.startswith("_") and not (name.startswith("__")
                                                         and name.endswith("__")):
                            rel = path.relative_to(root)
                            out.append(f"{rel}:{node.lineno}: {'.' * node.level}"
                                       f"{node.module or ''} import {name}")
    return out


def test_no_private_name_is_imported_across_modules():
    assert private_imports() == []


def test_the_private_name_scan_finds_one(tmp_path):
    (tmp_path / "cosim").mkdir()
    (tmp_path / "cosim" / "a.py").write_text("from .b import _hidden\nfrom .b import __all__\n")
    for folder in ("models", "netlists", "analysis", "rram_cosim"):
        (tmp_path / folder).mkdir()
    assert private_imports(tmp_path) == ["cosim/a.py:1: .b import _hidden"]

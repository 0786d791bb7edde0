"""The architecture holds: import-linter's contracts (pyproject.toml, [tool.importlinter]), each
shown to catch a forbidden import, and no private name of one module used from another.

lint-imports reads the package's file tree, while the editable install maps
``rram_cosim.<folder>`` onto the top-level folders; each check therefore runs on a copy laid
out as installed (``rram_cosim/models``, ...), in a subprocess whose working directory holds
that copy.
"""

import ast
import shutil
import subprocess
import sys
import tomllib
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


def contract_names() -> list[str]:
    """The names of the contracts in pyproject.toml."""
    with open(ROOT / "pyproject.toml", "rb") as f:
        return [c["name"] for c in tomllib.load(f)["tool"]["importlinter"]["contracts"]]


# one forbidden import per contract: (file, the line appended to it, the contract it breaks)
VIOLATIONS = [
    # a task that reaches up into the command line, even inside a function
    ("cosim/tasks/classify.py", "def _up():\n    from ..cli import runs  # noqa\n",
     "cli -> tasks -> spice, engines, data -> netlists -> models"),
    # a command that skips the tasks layer (a type-checking import counts too)
    ("cosim/cli/commands/tile.py",
     "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ...spice import runner  # noqa\n",
     "commands import only tasks, analysis, models and cli.runs"),
    # one command importing another
    ("cosim/cli/commands/tile.py", "from . import calibrate  # noqa\n",
     "commands are independent of each other"),
    # models reaching for the deck builders
    ("models/params.py", "def _deck():\n    from ..netlists import deck  # noqa\n",
     "models import nothing else of ours"),
    # a deck builder that runs ngspice
    ("netlists/deck.py", "def _run():\n    from ..cosim.spice import runner  # noqa\n",
     "netlists import only models"),
    # analysis importing beyond models
    ("analysis/stats.py", "from ..cosim.engines import registry  # noqa\n",
     "analysis imports only models"),
    # data importing the report code
    ("cosim/data/datasets.py", "def _report():\n    from ...analysis import report  # noqa\n",
     "spice, engines and data import only models and netlists (and each other)"),
]


def test_the_violations_cover_every_contract():
    assert sorted({c for _, _, c in VIOLATIONS}) == sorted(contract_names())


@pytest.mark.parametrize(("path", "line", "contract"), VIOLATIONS,
                         ids=[c for _, _, c in VIOLATIONS])
def test_a_forbidden_import_breaks_its_contract(tmp_path, path, line, contract):
    pkg = installed_layout(tmp_path)
    with open(pkg / path, "a") as f:
        f.write("\n" + line)
    res = lint_imports(tmp_path)
    out = " ".join(res.stdout.split())  # the summary wraps long contract names
    assert res.returncode != 0, res.stdout[-3000:]
    assert f"{contract} BROKEN" in out, res.stdout[-3000:]


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _module_file(root: Path, dotted: str) -> Path | None:
    """The file of our module ``rram_cosim.<folder>....`` in the tree at ``root`` (None: not a
    module of ours)."""
    parts = dotted.split(".")
    if parts[0] != "rram_cosim":
        return None
    base = root / "rram_cosim" if len(parts) == 1 else root.joinpath(*parts[1:])
    for path in (base / "__init__.py", base.with_suffix(".py")):
        if path.is_file():
            return path
    return None


def _dotted(root: Path, path: Path) -> list[str]:
    """``rram_cosim.<folder>...`` of the module at ``path`` (a package: its own name)."""
    rel = path.relative_to(root).with_suffix("").parts
    parts = [] if rel[0] == "rram_cosim" else ["rram_cosim"]
    parts += [p for p in rel if p != "__init__"]
    return parts


def _module_names(root: Path, path: Path, tree: ast.Module) -> dict[str, str]:
    """Names the module at ``path`` binds to modules of ours, by import: name -> module."""
    here = _dotted(root, path)
    package = here if path.name == "__init__.py" else here[:-1]
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "rram_cosim":
                    out[alias.asname or "rram_cosim"] = alias.asname and alias.name or "rram_cosim"
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                target = f"{source}.{alias.name}"
                if _module_file(root, target) is not None:
                    out[alias.asname or alias.name] = target
    return out


def _attribute_chain(node: ast.Attribute) -> tuple[str, list[str]] | None:
    """``a.b.c`` -> ("a", ["b", "c"]); None when the chain does not start at a name."""
    attrs = []
    cur: ast.expr = node
    while isinstance(cur, ast.Attribute):
        attrs.append(cur.attr)
        cur = cur.value
    return (cur.id, attrs[::-1]) if isinstance(cur, ast.Name) else None


def private_names(root: Path = ROOT) -> list[str]:
    """Private names of one of our modules used from another, anywhere in the package (dunders
    allowed): ``from <module> import _name`` and ``<module>._name`` (``<module>`` a name the
    importing module bound to a module of ours, or a submodule reached through it)."""
    out = []
    for folder in (*FOLDERS, "rram_cosim"):
        for path in sorted((root / folder).rglob("*.py")):
            rel = path.relative_to(root)
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and _our_module(node):
                    for alias in node.names:
                        if _private(alias.name):
                            out.append(f"{rel}:{node.lineno}: {'.' * node.level}"
                                       f"{node.module or ''} import {alias.name}")
            modules = _module_names(root, path, tree)
            for node in ast.walk(tree):
                chain = _attribute_chain(node) if isinstance(node, ast.Attribute) else None
                if chain is None or chain[0] not in modules or not _private(chain[1][-1]):
                    continue
                module = modules[chain[0]]
                for attr in chain[1][:-1]:  # only through submodules: then it is a module's
                    module = f"{module}.{attr}" if _module_file(root, f"{module}.{attr}") \
                        else ""
                if module:
                    out.append(f"{rel}:{node.lineno}: {chain[0]}.{'.'.join(chain[1])}")
    return out


def _our_module(node: ast.ImportFrom) -> bool:
    return node.level > 0 or (node.module or "").split(".")[0] == "rram_cosim"


def test_no_private_name_is_used_across_modules():
    assert private_names() == []


def test_the_private_name_scan_finds_imports_and_attributes(tmp_path):
    for folder in (*FOLDERS, "rram_cosim"):
        (tmp_path / folder).mkdir()
    (tmp_path / "cosim" / "b.py").write_text("_hidden = 1\n")
    (tmp_path / "cosim" / "sub").mkdir()
    (tmp_path / "cosim" / "sub" / "__init__.py").write_text("")
    (tmp_path / "cosim" / "sub" / "c.py").write_text("class K:\n    _x = 1\n")
    (tmp_path / "cosim" / "a.py").write_text(
        "from .b import _hidden\nfrom .b import __all__\n"
        "from . import b, sub\nimport rram_cosim.cosim.b as bb\nfrom .sub.c import K\n"
        "b._hidden\nbb._hidden\nsub.c._y\nb.__doc__\nK._x\nsub.c.K._x\n")
    assert private_names(tmp_path) == [
        "cosim/a.py:1: .b import _hidden",
        "cosim/a.py:6: b._hidden", "cosim/a.py:7: bb._hidden", "cosim/a.py:8: sub.c._y"]

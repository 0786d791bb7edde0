"""Module names in the documentation and the docstrings exist: every dotted ``rram_cosim.``
name, and every backquoted ``cosim.x.y``, ``models.x.y``, ``analysis.x`` or ``netlists.x``
reference (read as ``rram_cosim.<name>``), imports as a module or a module's attribute."""

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ("models", "netlists", "cosim", "analysis", "rram_cosim")

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
FULL = re.compile(rf"\brram_cosim(?:\.{IDENT})+")
# inside backquotes (or a fenced code block): a name under one of the four folders
SHORT = re.compile(rf"(?<![\w.])((?:cosim|models)(?:\.{IDENT}){{2,}}"
                   rf"|(?:analysis|netlists)(?:\.{IDENT})+)")
QUOTED = re.compile(r"```.*?```|``[^`]+``|`[^`\n]+`", re.DOTALL)


def names_in(text: str) -> list[tuple[int, str]]:
    """(line, full dotted name) of every module reference in ``text``."""
    out = [(m.start(), m.group(0)) for m in FULL.finditer(text)]
    for q in QUOTED.finditer(text):
        for m in SHORT.finditer(q.group(0)):
            out.append((q.start() + m.start(), "rram_cosim." + m.group(1)))
    return sorted((text.count("\n", 0, pos) + 1, name) for pos, name in out)


def docstrings(path: Path) -> list[tuple[int, str]]:
    """(first line, text) of every docstring of a module: the module's, its classes' and
    functions', and the strings that document its attributes."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return [(node.lineno, node.value.value) for node in ast.walk(tree)
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)]


def references() -> list[tuple[str, str]]:
    """(where, name) of every module reference in README.md, docs/*.md and the package."""
    out = []
    for md in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        out += [(f"{md.relative_to(ROOT)}:{line}", name)
                for line, name in names_in(md.read_text())]
    for folder in PACKAGE:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for start, text in docstrings(path):
                out += [(f"{path.relative_to(ROOT)}:{start + line - 1}", name)
                        for line, name in names_in(text)]
    return out


def resolves(name: str) -> bool:
    """Whether ``name`` is a module, or an attribute (chain) of the longest module it names."""
    parts = name.rstrip(".").split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError as e:
            if e.name is not None and not ".".join(parts[:i]).startswith(e.name):
                raise  # a module that exists but fails to import is a real error
            continue
        for attr in parts[i:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def test_the_scan_reads_both_forms():
    text = ("See ``x`` in `rram_cosim.models.params.TileSpec` and ``cosim.engines.nodal``;\n"
            "`models.breakdown.read_conductance(x)`, `analysis.energy` and\n"
            "rram_cosim.cosim.cli.main:main, not `cosim.py` nor `netlists/deck.py`.")
    assert names_in(text) == [
        (1, "rram_cosim.cosim.engines.nodal"), (1, "rram_cosim.models.params.TileSpec"),
        (2, "rram_cosim.analysis.energy"), (2, "rram_cosim.models.breakdown.read_conductance"),
        (3, "rram_cosim.cosim.cli.main")]
    assert resolves("rram_cosim.models.params.TileSpec.r_row_ohm")
    assert not resolves("rram_cosim.models.breakdown.read_conductance")
    assert not resolves("rram_cosim.cosim.calibrate")



@pytest.fixture(scope="module")
def refs():
    return references()


def test_docs_and_docstrings_name_modules_that_exist(refs):
    assert len(refs) > 20  # the scan found the references
    stale = sorted({f"{where}: {name}" for where, name in refs
                    if not resolves(name)})
    assert stale == []

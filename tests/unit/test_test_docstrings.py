"""Every test says, in the first line of its docstring, the behaviour it pins."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def undocumented_tests(root: Path) -> list[str]:
    """`path:line name` of every test function under root (fixtures excluded) with no docstring line."""
    out = []
    for path in sorted(root.rglob("test_*.py")):
        if "fixtures" in path.relative_to(root).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test"):
                doc = ast.get_docstring(node, clean=False) or ""
                if not doc.strip() or not doc.splitlines()[0].strip():
                    out.append(f"{path.relative_to(root)}:{node.lineno} {node.name}")
    return out


def test_every_test_has_a_docstring():
    """No test function under tests/ lacks a docstring whose first line states what it pins."""
    missing = undocumented_tests(TESTS)
    assert not missing, "tests without a one-line docstring:\n" + "\n".join(missing)


def test_the_check_finds_a_test_without_docstring(tmp_path):
    """The walk reports a test without a docstring (and one with a blank first line) and passes the rest."""
    (tmp_path / "test_x.py").write_text(
        'def test_a():\n    """pins a."""\n\n\ndef test_b():\n    pass\n\n\n'
        'class TestC:\n    def test_c(self):\n        """\n        later line."""\n\n\n'
        "def helper():\n    pass\n"
    )
    assert undocumented_tests(tmp_path) == ["test_x.py:5 test_b", "test_x.py:10 test_c"]

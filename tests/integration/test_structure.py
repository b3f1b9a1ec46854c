"""The shape of the house (docs/ARCHITECTURE.md), checked from the code's own imports.

- one import name: installed, the distribution's only top-level name is ``edirecon``;
- no import circle between modules, counting the imports inside functions;
- an import inside a function only where it defers a heavy library, said by a ``# deferred:`` comment;
- nothing under ``engine/decide/`` reaches SQLAlchemy (or the store), even through another module;
- ``engine/store/`` is the only code that writes SQL (issue 14, step 3).
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import REPO

PACKAGE_DIRS = ("engine", "parsers", "mappings")
STORE_LIBRARIES = ("sqlalchemy", "alembic", "psycopg", "procrastinate")


def _module_files() -> dict[str, Path]:
    files = {
        "edirecon": REPO / "__init__.py",
        "edirecon.cli": REPO / "cli.py",
        "edirecon.errors": REPO / "errors.py",
        "edirecon.money": REPO / "money.py",
        "edirecon.__main__": REPO / "__main__.py",
    }
    for top in PACKAGE_DIRS:
        for path in sorted((REPO / top).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            files[".".join(["edirecon", *parts])] = path
    return files


MODULES = _module_files()


def _resolve(module: str, node: ast.ImportFrom) -> list[str]:
    """The modules an ``from X import a, b`` names (a name that is a module counts as that module)."""
    if node.level:
        package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{node.module}" if node.module else package
    else:
        base = node.module or ""
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]


def _imports(module: str) -> list[tuple[str, int, bool]]:
    """(imported module, line, inside a function) for every import of ``module``."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    found: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((a.name, child.lineno, in_function) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                found.extend((m, child.lineno, in_function) for m in _resolve(module, child))
            visit(child, inner)

    visit(tree, False)
    return found


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module in MODULES:
        targets = set()
        for name, _, _ in _imports(module):
            # importing a.b.c runs a and a.b as well (but a module's own packages are already running)
            parts = name.split(".")
            prefixes = (".".join(parts[:i]) for i in range(1, len(parts) + 1))
            targets.update(p for p in prefixes if p in MODULES and not module.startswith(p + "."))
        targets.discard(module)
        targets.discard("edirecon")  # the root package imports nothing at import time (entry points are lazy)
        graph[module] = targets
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def test_no_import_circle_counting_imports_inside_functions():
    assert _circles(_graph()) == []


def _stage(module: str) -> str:
    """The stage a module belongs to: ``edirecon.engine.<stage>``, or the top-level module or package."""
    parts = module.split(".")
    if parts[1:2] == ["engine"] and len(parts) > 3:
        return ".".join(parts[:3])
    return ".".join(parts[:2]) if parts[1:2] != ["engine"] else module


def test_no_circle_between_stages():
    """The stages depend on each other one way (docs/ARCHITECTURE.md), not only their modules."""
    stages: dict[str, set[str]] = {}
    for module, targets in _graph().items():
        stages.setdefault(_stage(module), set()).update(_stage(t) for t in targets if _stage(t) != _stage(module))
    assert _circles(stages) == []


def test_circles_are_found_by_this_check():
    """The check itself sees a circle (a test that cannot fail proves nothing)."""
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_an_import_inside_a_function_says_what_it_defers():
    unexplained = []
    for module, path in MODULES.items():
        lines = path.read_text(encoding="utf-8").splitlines()
        for _, line, in_function in _imports(module):
            if not in_function:
                continue
            i = line - 2  # the line above, 0-based
            while i >= 0 and (not lines[i].strip() or lines[i].strip().startswith(("import ", "from "))):
                i -= 1
            if i < 0 or "# deferred:" not in lines[i]:
                unexplained.append(f"{path.relative_to(REPO)}:{line}")
    assert sorted(set(unexplained)) == []


def test_nothing_under_decide_reaches_the_store():
    graph = _graph()
    decide = [m for m in MODULES if m.startswith("edirecon.engine.decide")]
    assert decide, "engine/decide/ holds the rules"
    seen: set[str] = set()
    todo = list(decide)
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        todo.extend(graph[m])
    assert sorted(m for m in seen if ".store" in m or ".scale" in m) == []
    libraries = {name for m in seen for name, _, _ in _imports(m)}
    assert sorted(n for n in libraries if n.split(".")[0] in STORE_LIBRARIES) == []


def test_no_generic_top_level_name_is_imported():
    """Importing every module puts nothing but ``edirecon`` into sys.modules of this project."""
    code = (
        "import importlib, sys\n"
        + "".join(f"importlib.import_module({m!r})\n" for m in MODULES if not m.endswith("__main__"))
        + ("print(sorted(n for n in sys.modules if n.split('.')[0] in ('engine', 'parsers', 'mappings', 'cli')))")
    )
    out = subprocess.run([sys.executable, "-c", code], cwd="/", capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_the_wheel_holds_one_top_level_name(tmp_path):
    # built from a copy of the checkout, so that the build leaves nothing (build/, *.egg-info) in it
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "out", "__pycache__", "*.db"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path), str(source)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("edirecon-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert {t for t in tops if not t.endswith((".dist-info", ".data"))} == {"edirecon"}
    assert "edirecon/cli.py" in names and "edirecon/engine/decide/rules.py" in names
    assert "edirecon/mappings/cms838_reason_codes.csv" in names
    assert "edirecon/engine/store/migrations/versions/0007_crossover_carrier.py" in names
    assert not [n for n in names if n.startswith(("edirecon/tests/", "edirecon/bench/", "edirecon/sample_edi/"))]
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "edirecon = edirecon.cli:app" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_the_public_entry_points_import_from_edirecon():
    import edirecon

    for name in edirecon.__all__:
        assert getattr(edirecon, name) is not None, name
    with pytest.raises(AttributeError):
        edirecon.no_such_thing  # noqa: B018


# -- store/ is the only code that writes SQL ---------------------------------------------------

#: the modules outside engine/store/ that still write SQL, by name: known exceptions, none left
#: (issue 14, step 3: the refund workflow's SQL is in store/workflow.py, ingest's in store/intake.py).
#: A name listed here must be of a module that writes SQL: the test fails if one is listed but clean.
SQL_OUTSIDE_STORE: set[str] = set()
#: what only store/ may import: SQLAlchemy (but its exceptions: catching a database error writes no
#: SQL), the tables, and the driver-level SQL helpers
SQL_MODULES = ("edirecon.engine.store.schema", "edirecon.engine.store.bulk")
#: a string that is a SQL statement (its docstrings aside)
SQL_TEXT = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|WITH|COPY|PRAGMA|ANALYZE|BEGIN)\s")


def _sql_written(tree: ast.AST, imports: list[tuple[str, int, bool]]) -> list[str]:
    """Where code writes SQL: an import of SQLAlchemy (not ``sqlalchemy.exc``) or of the store's
    tables or SQL helpers, a call of ``exec_driver_sql`` or ``text()``, a string that is a SQL
    statement."""
    found = [
        f"{line}: imports {name}"
        for name, line, _ in imports
        if (name.split(".")[0] == "sqlalchemy" and not name.startswith("sqlalchemy.exc")) or name in SQL_MODULES
    ]
    docstrings = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            if (isinstance(f, ast.Attribute) and f.attr == "exec_driver_sql") or (isinstance(f, ast.Name) and f.id == "text"):
                found.append(f"{node.lineno}: calls {ast.unparse(f)}()")
            elif isinstance(f, ast.Attribute) and f.attr == "text" and isinstance(f.value, ast.Name) and f.value.id in ("sqlalchemy", "sa"):
                found.append(f"{node.lineno}: calls {ast.unparse(f)}()")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings and SQL_TEXT.match(node.value):
            found.append(f"{node.lineno}: SQL {node.value[:40]!r}")
    return sorted(set(found), key=lambda w: (int(w.split(":")[0]), w))


def test_only_the_store_writes_sql():
    outside = [m for m in MODULES if not m.startswith("edirecon.engine.store")]
    written = {m: _sql_written(ast.parse(MODULES[m].read_text(encoding="utf-8")), _imports(m)) for m in outside}
    assert {m: w for m, w in written.items() if w and m not in SQL_OUTSIDE_STORE} == {}
    assert sorted(m for m in SQL_OUTSIDE_STORE if not written.get(m)) == [], "clean now: take it off SQL_OUTSIDE_STORE"
    assert set(SQL_OUTSIDE_STORE) <= set(MODULES)


def test_sql_outside_the_store_is_found_by_this_check():
    """The check itself sees each way of writing SQL (a test that cannot fail proves nothing)."""
    source = (
        '"""SELECT in a docstring is prose."""\n'
        "from sqlalchemy.exc import SQLAlchemyError\n"
        "from sqlalchemy import select, text\n"
        "from edirecon.engine.store import schema as t\n"
        "def f(conn):\n"
        '    """UPDATE nothing: a docstring."""\n'
        '    conn.exec_driver_sql("SELECT 1")\n'
        '    conn.execute(text("DELETE FROM claims"))\n'
        '    rows = raw_rows(conn, f"SELECT id FROM {table}")\n'
    )
    tree = ast.parse(source)
    imports = [(m, node.lineno, False) for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for m in _resolve_absolute(node)]
    assert _sql_written(tree, imports) == [
        "3: imports sqlalchemy",
        "4: imports edirecon.engine.store.schema",
        "7: SQL 'SELECT 1'",
        "7: calls conn.exec_driver_sql()",
        "8: SQL 'DELETE FROM claims'",
        "8: calls text()",
        "9: SQL 'SELECT id FROM '",
    ]


def _resolve_absolute(node: ast.ImportFrom) -> list[str]:
    base = node.module or ""
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]

"""Architecture rules that matter, checked on the source.

1. Tenant isolation: a function that selects from a tenant-owned table must restrict it with
   `scoped(...)`, or say why not (an `# unscoped: <reason>` comment or an "Unscoped on purpose"
   docstring).
2. Layers: services and repositories know nothing of HTTP.
3. JSON from outside is parsed by `kit.jsonparse` (depth-limited), never by the recursive
   `json.loads` (a body of 10,000 brackets would be a RecursionError: a 500).
4. No import cycle among modules, nor among domain packages, counting the imports inside
   functions and under `TYPE_CHECKING` (the layers themselves are import-linter contracts in
   pyproject.toml, run by `make check`).
5. A write of `users` the ORM does not see (a Core statement, SQL text, a database function
   that writes it) says so in its module (`principals.user_rows_written` / `members_changed`):
   the member list's cached pages (`identity.member_pages`) are invalidated by the ORM's
   flushes and by those calls only.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

import bigfootlive.models  # noqa: F401
from bigfootlive.db import Base

UNSCOPED_REASON = re.compile(r"# unscoped: \S|Unscoped on purpose")
ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "bigfootlive"
TENANT_MODELS = {
    mapper.class_.__name__
    for mapper in Base.registry.mappers
    if "tenant_id" in mapper.columns and mapper.class_.__name__ != "AuditRecord"
} | {"AuditRecord"}


def _functions(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def _selected_models(func: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(func):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "select":
            for arg in node.args:
                root = arg.value if isinstance(arg, ast.Attribute) else arg
                if isinstance(root, ast.Name) and root.id in TENANT_MODELS:
                    names.add(root.id)
    return names


def test_tenant_owned_tables_are_queried_through_scoped() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        source = path.read_text()
        lines = source.splitlines()
        for func in _functions(ast.parse(source)):
            if not _selected_models(func):
                continue
            body = "\n".join(lines[func.lineno - 1 : func.end_lineno])
            if "scoped(" not in body and not UNSCOPED_REASON.search(body):
                offenders.append(f"{path.relative_to(PACKAGE)}:{func.lineno} {func.name}")
    assert offenders == [], "tenant-owned tables queried without scoped():\n" + "\n".join(offenders)


_USERS_DML = re.compile(r"\b(?:UPDATE|INSERT\s+INTO|DELETE\s+FROM)\s+users\b", re.IGNORECASE)
_SAYS_SO = ("user_rows_written(", "members_changed(")


def _functions_writing_users() -> set[str]:
    """The database functions (created by migrations) whose body writes `users`."""
    found = set()
    for path in (PACKAGE / "migrations").rglob("*.py"):
        for name, body in re.findall(
            r"CREATE (?:OR REPLACE )?FUNCTION\s+(\w+)\s*\(.*?\$\$(.*?)\$\$", path.read_text(), re.S
        ):
            if _USERS_DML.search(body):
                found.add(name)
    return found


def _writes_users(tree: ast.AST, source: str, functions: set[str]) -> bool:
    """Core DML on `User` / its table (or a name bound to `User.__table__`), SQL text that
    writes `users`, or a call naming a database function that does."""
    tables = {"User"} | {
        target.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign | ast.AnnAssign)
        and ast.unparse(node.value or ast.Constant(None)) == "User.__table__"
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    }
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", getattr(node.func, "attr", None))
            in ("update", "insert", "delete")
            and node.args
            and ast.unparse(node.args[0]) in tables | {"User.__table__"}
        ):
            return True
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if _USERS_DML.search(node.value) or node.value in functions:
                return True
    return False


def test_writes_of_users_outside_the_orm_say_so() -> None:
    functions = _functions_writing_users()
    assert "bfl_sign_in_write" in functions  # the scan finds what is there
    offenders, writers = [], []
    for path in PACKAGE.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        source = path.read_text()
        if _writes_users(ast.parse(source), source, functions):
            writers.append(path.name)
            if not any(call in source for call in _SAYS_SO):
                offenders.append(str(path.relative_to(PACKAGE)))
    assert {"repository.py", "sign_in_pg.py"} <= set(writers)
    assert offenders == [], (
        "users written outside the ORM without principals.user_rows_written / members_changed "
        "(the member list's cached pages would not see it):\n" + "\n".join(offenders)
    )


def _service_modules() -> list[Path]:
    """service.py and repository.py, and the modules the SSO, MFA, identity, events and chat
    services were split into (every module of those packages but endpoints and FastAPI deps)."""
    split = [
        path
        for domain in ("sso", "mfa", "identity", "events", "chat")
        for path in (PACKAGE / domain).rglob("*.py")
        if path.name not in ("endpoints.py", "deps.py")
    ]
    return sorted({*PACKAGE.rglob("service.py"), *PACKAGE.rglob("repository.py"), *split})


def test_services_and_repositories_do_not_import_http() -> None:
    offenders = []
    for path in _service_modules():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.split(".")[0]
                in (
                    "fastapi",
                    "starlette",
                )
            ):
                offenders.append(f"{path.relative_to(PACKAGE)} imports {node.module}")
    assert offenders == []


def test_json_is_parsed_only_by_the_depth_limited_parser() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path == PACKAGE / "kit" / "jsonparse.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            func = node.func
            stdlib = func.attr == "loads" and getattr(func.value, "id", None) == "json"
            # httpx / Starlette `.json()` and `.receive_json()` call json.loads too.
            method = func.attr in ("json", "receive_json") and not node.args
            if stdlib or method:
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {func.attr}()")
    assert offenders == [], "use bigfootlive.kit.jsonparse.loads:\n" + "\n".join(offenders)


@pytest.mark.parametrize(
    "module", sorted(p.stem for p in (ROOT / "bench").glob("*.py") if p.stem != "__init__")
)
def test_every_benchmark_imports(module: str) -> None:
    """mypy covers src only: a benchmark naming a moved module fails here, not in `make bench`."""
    importlib.import_module(f"bench.{module}")


# --- the import graph -------------------------------------------------------------------------
# grimp (import-linter's graph library) records every import statement: at module level, inside
# functions and under `if TYPE_CHECKING:`. A cycle hidden in a function still counts.

# Edge modules: they may import anything, and nothing below the edge imports them (the
# "protected" contract in pyproject.toml). Those living in a domain's folder (its endpoints,
# tasks and FastAPI dependencies) count with the edge, not with their domain's package.
EDGE_MODULES = {
    "bigfootlive.app",
    "bigfootlive.cli",
    "bigfootlive.cli_ops",
    "bigfootlive.cli_settings",
    "bigfootlive.composition",
    "bigfootlive.deps",
    "bigfootlive.http_errors",
    "bigfootlive.main",
    "bigfootlive.routing",
    "bigfootlive.serving",
    "bigfootlive.jobs.worker",
    "bigfootlive.containers.template",
    "bigfootlive.realtime.gateway",
    "bigfootlive.realtime.commands",
    "bigfootlive.streaming.delivery",
}
EDGE_TAILS = {"endpoints", "tasks", "deps"}
EDGE_PACKAGES = {"web"}  # the web app's pages: an edge package as a whole


def _graph():
    import grimp

    graph = grimp.build_graph("bigfootlive", cache_dir=None)
    modules = {
        m
        for m in graph.modules
        if m != "bigfootlive" and not m.startswith("bigfootlive.migrations")
    }
    edges = {
        m: {i for i in graph.find_modules_directly_imported_by(m) if i in modules} for m in modules
    }
    return modules, edges


def _package(module: str) -> str:
    parts = module.split(".")
    if module in EDGE_MODULES or (len(parts) > 2 and parts[2] in EDGE_TAILS):
        return "edge"
    if len(parts) > 1 and parts[1] in EDGE_PACKAGES:
        return "edge"
    return parts[1]


def _cycles(nodes: set[str], edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(nodes):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_graph_counts_function_local_and_type_checking_imports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import grimp

    package = tmp_path / "probe"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "low.py").write_text("")
    (package / "local.py").write_text("def f():\n    from probe import low\n")
    (package / "typing_only.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from probe import low\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = grimp.build_graph("probe", cache_dir=None)
    assert "probe.low" in graph.find_modules_directly_imported_by("probe.local")
    assert "probe.low" in graph.find_modules_directly_imported_by("probe.typing_only")


def test_no_import_cycle_among_modules() -> None:
    modules, edges = _graph()
    assert _cycles(modules, edges) == []


def test_no_import_cycle_among_domain_packages() -> None:
    _, edges = _graph()
    packages: dict[str, set[str]] = {}
    for module, imported in edges.items():
        source = _package(module)
        packages.setdefault(source, set()).update(
            _package(i) for i in imported if _package(i) != source
        )
    cycles = _cycles(set(packages), packages)
    assert cycles == [], cycles

"""Architecture rules that matter, checked on the source.

1. Tenant isolation: a function that selects from a tenant-owned table must restrict it with
   `scoped(...)`, or say why not (an `# unscoped: <reason>` comment or an "Unscoped on purpose"
   docstring).
2. Layers: services and repositories know nothing of HTTP.
3. JSON from outside is parsed by `kit.jsonparse` (depth-limited), never by the recursive
   `json.loads` (a body of 10,000 brackets would be a RecursionError: a 500).
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

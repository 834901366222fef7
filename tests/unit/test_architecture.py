"""The rules of dependency of docs/architecture.md, checked on the source: a layer imports only
layers below it, Ray only in the Ray runtime, Hydra and OmegaConf only in the Hydra app, and the
driver of a Ray run never loads torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "apex_dqn"

# Layer of every module, bottom up (docs/architecture.md). A module may import its own layer
# and those below.
LAYERS: dict[str, int] = {
    # The package root forwards apex_dqn.train and apex_dqn.load_policy to api.py on first use;
    # that ``import apex_dqn`` loads no layer above the leaves is checked in test_api.py.
    "__init__": 6,
    "core": 1,
    "config": 1,
    "algo": 2,
    "envs": 2,
    "replay": 2,
    "files": 2,
    "roles": 3,
    "run": 4,
    "runtime": 5,
    "cli": 6,
    "api": 6,
    "__main__": 6,
}
RAY_LAYER = {"runtime/hosts.py", "runtime/ray_runtime.py", "runtime/ray_cluster.py"}
HYDRA_APP = {"cli/train.py", "cli/args.py", "cli/sweep.py"}
# Config keys that only say where and with what a process runs: the runtimes and the CLI read
# them, the components and roles that do the work never do.
PLACEMENT_KEYS = {
    "num_cpus",
    "num_gpus",
    "num_threads",
    "nice",
    "spread",
    "resources",
    "placement",
    "parameter_server_num_cpus",
}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.stat().st_size)


def _top(path: Path, package: Path = PACKAGE) -> str:
    """The layer key of a module: its first component below the package."""
    parts = path.relative_to(package).with_suffix("").parts
    return parts[0]


def _imports(path: Path) -> list[tuple[str, int]]:
    """(imported module, line) of every import in ``path``, also those inside functions."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, node.lineno))
            if node.module == "apex_dqn":  # from apex_dqn import x (a module)
                found += [
                    (f"apex_dqn.{a.name}", node.lineno) for a in node.names if a.name in LAYERS
                ]
    return found


def test_every_module_has_a_layer():
    missing = sorted({_top(p) for p in _modules()} - set(LAYERS))
    assert not missing, f"give these modules a layer in docs/architecture.md: {missing}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_follow_the_layers(path):
    _check_imports(path)


def _check_imports(path: Path, package: Path = PACKAGE) -> None:
    """The layer, Ray and Hydra rules for the module at ``path`` in ``package``."""
    own = LAYERS[_top(path, package)]
    rel = str(path.relative_to(package))
    for name, line in _imports(path):
        root = name.split(".")[0]
        if root == "apex_dqn" and name != "apex_dqn":
            target = LAYERS[name.split(".")[1]]
            assert target <= own, f"{rel}:{line} (layer {own}) imports {name} (layer {target})"
        if root == "ray":
            assert rel in RAY_LAYER, f"{rel}:{line} imports Ray outside the Ray runtime"
        if root in ("hydra", "omegaconf"):
            assert rel in HYDRA_APP, f"{rel}:{line} imports {root} outside the Hydra app"


def _placement_reads(path: Path) -> list[tuple[str, int]]:
    """(attribute, line) of every read of a placement key in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        (node.attr, node.lineno)
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in PLACEMENT_KEYS
    ]


@pytest.mark.parametrize(
    "path",
    [p for p in _modules() if LAYERS[_top(p)] <= LAYERS["run"] and _top(p) != "config"],
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_only_the_runtimes_read_placement_keys(path):
    """Components, roles and the driver get configs that hold Ray's placement knobs too; only
    the runtimes (and the CLI) may act on them."""
    _check_placement(path)


def _check_placement(path: Path, package: Path = PACKAGE) -> None:
    rel = str(path.relative_to(package))
    reads = _placement_reads(path)
    assert not reads, f"{rel} reads placement keys {reads}: leave them to apex_dqn.runtime"


def test_the_rules_catch_a_violation(tmp_path):
    """The checker itself: an upward import, a stray Ray import and a placement read are found
    in a probe module of a scratch package (the real package is never written to)."""
    package = tmp_path / "apex_dqn"
    (package / "roles").mkdir(parents=True)
    bad = package / "roles" / "_probe_violation.py"
    bad.write_text("import ray\nfrom apex_dqn.run.driver import Driver\n", encoding="utf-8")
    with pytest.raises(AssertionError, match="imports Ray outside"):
        _check_imports(bad, package)
    bad.write_text("from apex_dqn.run.driver import Driver\n", encoding="utf-8")
    with pytest.raises(AssertionError, match=r"layer 3\) imports apex_dqn.run.driver"):
        _check_imports(bad, package)
    bad.write_text("def f(cfg):\n    return cfg.actors.num_cpus\n", encoding="utf-8")
    with pytest.raises(AssertionError, match=r"reads placement keys \[\('num_cpus', 2\)\]"):
        _check_placement(bad, package)
    bad.write_text("from apex_dqn.core.types import TransitionBatch\n", encoding="utf-8")
    _check_imports(bad, package)  # a downward import passes


def test_the_ray_driver_never_loads_torch():
    code = (
        "import sys\n"
        "import apex_dqn.runtime.ray_runtime, apex_dqn.run.driver, apex_dqn.cli.train\n"
        "import apex_dqn.api, apex_dqn.roles.build\n"
        "print(sorted(m for m in ('torch', 'gymnasium.vector') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "torch" not in out.stdout, out.stdout


def test_every_package_is_shipped():
    """pyproject.toml lists the packages a wheel holds: a new folder must be among them."""
    import re

    text = (PACKAGE.parent / "pyproject.toml").read_text(encoding="utf-8")
    block = re.search(r"^packages = \[(.*?)\]", text, re.S | re.M)
    assert block is not None, "no [tool.setuptools] packages list"
    shipped = set(re.findall(r'"([^"]+)"', block.group(1)))
    found = {
        ".".join(p.parent.relative_to(PACKAGE.parent).parts) for p in PACKAGE.rglob("__init__.py")
    }
    assert found <= shipped, f"add to [tool.setuptools] packages: {sorted(found - shipped)}"


def test_replay_is_numpy_only():
    """Shards run without torch: a shard process never pays for its import."""
    for path in (PACKAGE / "replay").glob("*.py"):
        roots = {name.split(".")[0] for name, _ in _imports(path)}
        assert not {"torch", "ray"} & roots, path.name


def test_the_package_root_imports_only_the_api_and_only_when_asked():
    """``import apex_dqn`` runs in every process (actors, shards): the root may forward
    ``apex_dqn.train`` to the API on first use, and import nothing of the package itself."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    package = {name for name, _ in _imports(PACKAGE / "__init__.py") if name.startswith("apex_dqn")}
    assert package <= {"apex_dqn", "apex_dqn.api"}, package
    at_import = [  # module level, outside ``if TYPE_CHECKING:``
        ast.unparse(node)
        for node in tree.body
        if (isinstance(node, ast.Import) and any(a.name.startswith("apex_dqn") for a in node.names))
        or (isinstance(node, ast.ImportFrom) and (node.module or "").startswith("apex_dqn"))
    ]
    assert not at_import, at_import

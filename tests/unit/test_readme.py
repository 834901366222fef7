"""The README's two quick-start commands stay true: CI runs the same test line."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section)


def test_quick_start_has_exactly_two_commands():
    commands = _quick_start_commands()
    assert len(commands) == 2, commands
    train, test = commands
    assert train.endswith("apex-dqn") and "pip install -e ." in train
    # The suite, then the hosts tests (network namespaces), which pyproject.toml leaves out of
    # a plain `pytest`.
    assert test.endswith("&& pytest && pytest -m hosts") and "[test]" in test
    for cmd in commands:
        assert cmd.startswith("python3 -m venv .venv")
        assert cmd.index("torch==2.13.0") < cmd.index("pip install -e")


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert _quick_start_commands()[1] in ci


def test_package_requirement_on_torch_is_a_range():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"torch>=2.4"' in pyproject and "torch==" not in pyproject


def test_every_relative_link_of_the_readme_exists():
    """The README is what a newcomer reads first; its links into docs/ must lead somewhere (the
    site's own pages are checked by the strict docs build)."""
    text = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)\s#]+)(?:#[^)]*)?\)", text)
    local = [t for t in targets if not t.startswith(("http://", "https://"))]
    assert local, "no links found: the pattern is broken"
    missing = [t for t in local if not (ROOT / t).exists()]
    assert not missing, missing


def test_the_readme_stays_a_first_page():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) < 150, "the manual belongs in docs/ (the documentation site)"

"""The documentation site builds with ``mkdocs build --strict``: a broken link, a missing anchor
or an API reference to nothing fails the suite."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _build(config: Path, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        stdin=subprocess.DEVNULL,
    )


def test_the_site_builds_strictly_with_the_configuration_reference(tmp_path: Path):
    proc = _build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert proc.returncode == 0, proc.stderr[-3000:]
    config_page = (tmp_path / "site" / "reference" / "config" / "index.html").read_text()
    # Field docstrings of apex_dqn/config/ reach the key reference.
    assert "Ray CPUs reserved per actor" in config_page
    assert "Transitions per update" in config_page


def test_a_broken_link_fails_the_build(tmp_path: Path):
    """The site's own settings, on a page that links to a page that does not exist."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n\nSee [the guide](guide.md#setup).\n")
    settings = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    settings.update(docs_dir=str(docs), nav=[{"Home": "index.md"}], plugins=["search"])
    config = tmp_path / "mkdocs.yml"
    config.write_text(yaml.safe_dump(settings))
    proc = _build(config, tmp_path / "site")
    assert proc.returncode != 0
    assert "guide.md" in proc.stderr, proc.stderr[-2000:]

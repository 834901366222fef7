"""The suite's conftest: pytest-timeout on for every test (a hung test fails alone instead of
hanging CI), and ``--fast``, the tier that starts no Ray."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_hung_test_fails_by_the_configured_timeout_and_multinode_tests_get_longer(tmp_path):
    """A copy of the suite's conftest and pytest settings with a 2 s default: a test that
    sleeps 30 s fails on its timeout within seconds; a multinode test's limit is longer."""
    (tmp_path / "conftest.py").write_text((ROOT / "tests" / "conftest.py").read_text())
    (tmp_path / "test_hang.py").write_text(
        textwrap.dedent(
            """
            import time
            import pytest

            def test_hangs():
                time.sleep(30)

            @pytest.mark.multinode
            def test_multinode_limit(request):
                marker = request.node.get_closest_marker("timeout")
                assert marker is not None and marker.args[0] > 300
            """
        )
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "timeout=2",
         "-o", "markers=multinode", str(tmp_path)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert "1 failed, 1 passed" in proc.stdout, proc.stdout[-2000:]
    assert "Timeout" in proc.stdout
    # The suite's own setting, not commented out (tomllib is Python 3.11+, the package 3.10+).
    assert re.search(r"^timeout = 300$", (ROOT / "pyproject.toml").read_text(), re.MULTILINE)


def test_fast_leaves_out_every_test_that_starts_ray_or_runs_end_to_end(tmp_path):
    (tmp_path / "conftest.py").write_text((ROOT / "tests" / "conftest.py").read_text())
    (tmp_path / "test_tiers.py").write_text(
        textwrap.dedent(
            """
            import pytest

            def test_plain():
                pass

            @pytest.mark.slow
            def test_slow():
                pass

            @pytest.mark.ray
            def test_ray():
                pass

            @pytest.mark.multinode
            def test_multinode():
                pass
            """
        )
    )
    markers = ["-o", "markers=slow\nray\nmultinode\ngpu"]
    run = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *markers, str(tmp_path)]
    fast = subprocess.run([*run, "--fast", "-v"], capture_output=True, text=True, timeout=60)
    assert "1 passed, 3 deselected" in fast.stdout, fast.stdout[-2000:]
    assert "test_plain PASSED" in fast.stdout
    everything = subprocess.run(run, capture_output=True, text=True, timeout=60)
    assert "4 passed" in everything.stdout, everything.stdout[-2000:]

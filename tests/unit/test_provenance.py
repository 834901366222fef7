"""benchmarks/provenance.py: what every benchmark JSON records about where a figure came from."""

from __future__ import annotations

import datetime
import subprocess

import pytest

from tests.unit.benchmark_module import BENCHMARKS, load_benchmark


@pytest.fixture(scope="module")
def prov():
    """benchmarks/provenance.py as a module."""
    return load_benchmark("provenance.py", "provenance_under_test")


def test_provenance_names_this_checkouts_commit_command_machine_and_date(prov):
    record = prov.provenance(["benchmarks/x.py", "--json", "out.json"])
    head = subprocess.run(
        ["git", "-C", str(BENCHMARKS), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    assert record["commit"] == head and len(head) == 40
    assert record["command"] == "python benchmarks/x.py --json out.json"
    assert isinstance(record["code_dirty"], bool)
    machine = record["machine"]
    assert machine["cores"] >= 1 and machine["cpu"]
    assert isinstance(machine["avx512_bf16"], bool)
    date = datetime.datetime.fromisoformat(record["date"])
    assert abs((datetime.datetime.now(datetime.timezone.utc) - date).total_seconds()) < 60
    assert datetime.datetime.fromisoformat(record["finished"]) >= date


def test_outside_a_checkout_commit_and_dirty_are_none(prov, monkeypatch, tmp_path):
    monkeypatch.setattr(prov, "ROOT", tmp_path)
    assert prov.commit() is None
    assert prov.code_dirty() is None


def test_code_dirty_sees_an_uncommitted_change_under_apex_dqn(prov, monkeypatch, tmp_path):
    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "apex_dqn").mkdir()
    (tmp_path / "apex_dqn" / "a.py").write_text("x = 1\n")
    (tmp_path / "README.md").write_text("text\n")
    git("add", ".")
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "init")
    monkeypatch.setattr(prov, "ROOT", tmp_path)
    assert prov.code_dirty() is False
    (tmp_path / "README.md").write_text("other text\n")  # docs do not make a figure stale
    assert prov.code_dirty() is False
    (tmp_path / "apex_dqn" / "a.py").write_text("x = 2\n")
    assert prov.code_dirty() is True


def test_the_record_is_the_one_taken_at_the_start_and_says_if_the_code_changed_since(
    prov, monkeypatch, tmp_path
):
    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-C", str(tmp_path), "-c", "user.email=t@t", "-c", "user.name=t", *args],
            check=True, capture_output=True,
        )  # fmt: skip

    git("init", "-q")
    (tmp_path / "apex_dqn").mkdir()
    (tmp_path / "apex_dqn" / "a.py").write_text("x = 1\n")
    git("add", ".")
    git("commit", "-qm", "one")
    monkeypatch.setattr(prov, "ROOT", tmp_path)
    began = prov.start()
    monkeypatch.setattr(prov, "machine", lambda: {"load_average_at_start": -1.0})  # later load
    (tmp_path / "README.md").write_text("text\n")
    git("add", ".")
    git("commit", "-qm", "docs")  # a commit while it runs, outside apex_dqn/ and conf/
    record = prov.provenance(["x.py"])
    assert record["commit"] == began["commit"] != prov.commit()
    assert record["machine"] == began["machine"] and record["date"] == began["date"]
    assert record["code_changed_during_run"] is False
    (tmp_path / "apex_dqn" / "a.py").write_text("x = 2\n")  # an edit while it runs
    assert prov.provenance(["x.py"])["code_changed_during_run"] is True
    git("commit", "-qam", "code")  # and committed
    assert prov.provenance(["x.py"])["code_changed_during_run"] is True
    prov.start()  # a start on dirty code cannot tell; its record says dirty instead
    (tmp_path / "apex_dqn" / "a.py").write_text("x = 3\n")
    assert prov.start()["code_dirty"] is True
    assert prov.provenance(["x.py"])["code_changed_during_run"] is None

"""benchmarks/figures.py: the registry of quoted figures holds, and catches what goes wrong."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from tests.unit.benchmark_module import load_benchmark


@pytest.fixture(scope="module")
def figures():
    """benchmarks/figures.py as a module."""
    return load_benchmark("figures.py", "figures_registry")


def test_every_registered_figure_is_quoted_as_its_json_gives_it(figures):
    index = figures.load_index()
    assert len(index) >= 5  # the registry is in use
    assert figures.problems(index) == []


PROVENANCE = {"commit": "abc", "command": "python x.py", "machine": {"cpu": "c"}, "date": "d"}


def _site(tmp_path, *, quote: str = "**12.5 s**", value: float = 12.46, provenance=PROVENANCE):
    (tmp_path / "README.md").write_text(f"It takes {quote} to solve.\n")
    (tmp_path / "fig.json").write_text(
        json.dumps({"runs": [{"t": value}], "provenance": provenance})
    )
    return [
        load_benchmark("figures.py", "figures_registry").Figure(
            doc="README.md", quote="12.5", json="fig.json", key="runs.0.t", format="{:.1f}"
        )
    ]


def test_every_json_a_page_names_is_a_registered_source_or_dated_history(figures):
    history = figures.load_history()
    assert len(history) >= 5  # the history is in use
    assert figures.unaccounted(figures.load_index(), history) == []


def test_a_page_naming_an_unaccounted_or_undated_json_is_caught(figures, tmp_path):
    (tmp_path / "docs" / "figures").mkdir(parents=True)
    (tmp_path / "docs" / "figures" / "old.json").write_text('{"history": true}')
    (tmp_path / "docs" / "figures" / "new.json").write_text("{}")
    page = tmp_path / "docs" / "page.md"
    old = figures.History(
        json="docs/figures/old.json", date="2026-11-24", commit="d9f571d", what=""
    )
    new = figures.Figure(doc="", quote="", json="docs/figures/new.json", key="", format="")

    def found(text: str, *, history=(old,), registered=(new,)) -> list[str]:
        page.write_text(text)
        return figures.unaccounted(list(registered), list(history), tmp_path)

    dated = "Once ([`old.json`](figures/old.json), 2026-11-24 at d9f571d). Now `new.json`.\n"
    assert found(dated) == []
    assert (
        "does not give its date 2026-11-24 and commit d9f571d"
        in found(dated + "\nAgain: `docs/figures/old.json`.\n")[0]
    )  # every paragraph naming it, not just one
    assert "does not give" in found("Once (old.json, 2026-11-24). `new.json`.\n")[0]
    assert found(dated + "\n```bash\nrun --json docs/figures/old.json\n```\n") == []
    assert found(dated + "\nThe run writes `summary.json`.\n") == []  # no such file: no source
    assert "neither a registered figure's source nor history" in found(dated, history=())[0]
    assert (
        "also a registered figure's source"
        in found(dated, registered=(new, figures.Figure("", "", old.json, "", "")))[0]
    )
    assert found("`new.json`\n") == ["history docs/figures/old.json: no page names it"]
    (tmp_path / "docs" / "figures" / "old.json").write_text('{"history": false}')
    assert found(dated) == ['history docs/figures/old.json: the file does not say "history": true']
    (tmp_path / "docs" / "figures" / "old.json").write_text("[1, 2]")  # a bare list: no mark
    assert found(dated) == []


def test_history_entries_need_a_date_and_a_commit(figures, tmp_path):
    index = tmp_path / "index.yaml"
    entry = {"json": "a.json", "date": "2026-11-24", "commit": "d9f571d", "what": "w"}
    index.write_text(yaml.safe_dump({"history": [entry]}))
    assert figures.load_history(index)[0].commit == "d9f571d"
    for bad, match in [
        ({**entry, "date": "24 Nov"}, "date must be YYYY-MM-DD"),
        ({**entry, "commit": "main"}, "commit must be"),
        ({k: v for k, v in entry.items() if k != "what"}, "history entry 0 must have exactly"),
    ]:
        index.write_text(yaml.safe_dump({"history": [bad]}))
        with pytest.raises(ValueError, match=match):
            figures.load_history(index)


def test_a_quote_or_a_value_changed_alone_is_caught(figures, tmp_path):
    assert figures.problems(_site(tmp_path), tmp_path) == []
    changed_text = _site(tmp_path, quote="**12.9 s**")
    assert "not in the document" in figures.problems(changed_text, tmp_path)[0]
    changed_json = _site(tmp_path, value=13.0)
    assert "runs.0.t gives '13.0'" in figures.problems(changed_json, tmp_path)[0]
    no_record = _site(tmp_path, provenance={"commit": "abc"})
    assert "records no command, machine, date" in figures.problems(no_record, tmp_path)[0]


def test_stale_names_figures_whose_code_changed_and_only_those(figures, tmp_path):
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(tmp_path), "-c", "user.email=t@t", "-c", "user.name=t", *args],
            check=True, capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip

    git("init", "-q")
    (tmp_path / "apex_dqn").mkdir()
    (tmp_path / "apex_dqn" / "a.py").write_text("x = 1\n")
    git("add", ".")
    git("commit", "-qm", "one")
    first = git("rev-parse", "HEAD")
    index = _site(tmp_path, provenance={**PROVENANCE, "commit": first, "code_dirty": False})
    assert figures.stale(index, tmp_path) == []
    (tmp_path / "README.md").write_text("other words\n")  # docs alone: still current
    git("add", ".")
    git("commit", "-qm", "docs")
    assert figures.stale(index, tmp_path) == []
    (tmp_path / "apex_dqn" / "a.py").write_text("x = 2\n")
    git("commit", "-qam", "code")
    assert figures.stale(index, tmp_path)[0][1] == f"changed since {first[:8]}: apex_dqn/a.py"
    for name in "bcde":
        (tmp_path / "apex_dqn" / f"{name}.py").write_text("y = 1\n")
    git("add", ".")
    git("commit", "-qm", "more code")
    assert figures.stale(index, tmp_path)[0][1].endswith("apex_dqn/c.py and 2 more")
    for record, why in [
        ({**PROVENANCE, "commit": None}, "records no commit"),
        ({**PROVENANCE, "commit": "f" * 40}, "not one of this repository's"),
        ({**PROVENANCE, "commit": "--output=x"}, "not one of this repository's"),
        ({**PROVENANCE, "commit": first, "code_dirty": True}, "uncommitted"),
        (
            {**PROVENANCE, "commit": git("rev-parse", "HEAD"), "code_changed_during_run": True},
            "the code changed while it ran",
        ),
    ]:
        assert why in figures.stale(_site(tmp_path, provenance=record), tmp_path)[0][1]


def test_the_index_is_plain_yaml_with_the_five_fields(figures, tmp_path):
    entries = yaml.safe_load(figures.INDEX.read_text())["figures"]
    assert all(set(e) == {"doc", "quote", "json", "key", "format"} for e in entries)
    bad = tmp_path / "index.yaml"
    bad.write_text(yaml.safe_dump({"figures": [{**entries[0], "extra": 1}]}))
    with pytest.raises(ValueError, match="figure 0 must have exactly"):
        figures.load_index(bad)


def test_a_quote_is_a_whole_figure_not_part_of_a_longer_number(figures):
    assert figures.quoted("12.5", "took 12.5 s")
    assert figures.quoted("12.5", "took **12.5**x")
    assert not figures.quoted("12.5", "took 112.5 s")
    assert not figures.quoted("12.5", "took 12.55 s")
    assert figures.quoted("0.47x", "ratio 0.47x.")


def test_remake_quick_runs_each_quick_benchmark_into_docs_figures_then_checks(capsys):
    remake = load_benchmark("remake_quick.py", "remake_quick")
    assert remake.main(["--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[2] for line in lines] == [
        "benchmarks/cartpole_vs_sb3.py",
        "benchmarks/startup.py",
        "benchmarks/replay_bench.py",
        "benchmarks/learning.py",
        "benchmarks/figures.py",
    ]
    assert all("--json docs/figures/" in line for line in lines[:-1])
    assert remake.commands(["startup"])[0][1:3] == ["benchmarks/startup.py", "--repeats"]
    with pytest.raises(ValueError, match="unknown figures"):
        remake.commands(["pong"])


def test_requote_gives_each_figure_its_new_value_where_that_is_unambiguous(figures, tmp_path):
    (tmp_path / "fig.json").write_text(
        json.dumps({"a": 12.46, "b": 3.0, "c": 7.25, "d": 9.0, "provenance": PROVENANCE})
    )
    (tmp_path / "README.md").write_text(
        "Solved in **13.1 s**; 113.1 is another number.\n"
        "Twice: 2.0 here and 2.0 there.\nAlready new: 7.2.\nUnchanged: 9.0.\n"
    )
    rows = [("13.1", "a"), ("2.0", "b"), ("7.1", "c"), ("9.0", "d")]
    (tmp_path / "index.yaml").write_text(
        "# the registry\nfigures:\n"
        + "".join(
            f'  - {{doc: README.md, quote: "{q}", json: fig.json, key: {k}, format: "{{:.1f}}"}}\n'
            for q, k in rows
        )
    )
    changed, left = figures.requote(tmp_path / "index.yaml", tmp_path)
    assert changed == [
        "README.md: '13.1' -> '12.5'",
        "README.md: '7.1' -> '7.2' (the text had it already)",
    ]
    assert left == [
        "README.md: '2.0' -> '3.0': the old quote stands 2 times; edit the text by hand"
    ]
    text = (tmp_path / "README.md").read_text()
    assert "**12.5 s**" in text and "113.1 is another" in text and "2.0 there" in text
    index = (tmp_path / "index.yaml").read_text()
    assert index.startswith("# the registry\n")  # comments kept
    quotes = [fig.quote for fig in figures.load_index(tmp_path / "index.yaml")]
    assert quotes == ["12.5", "2.0", "7.2", "9.0"]
    assert figures.requote(tmp_path / "index.yaml", tmp_path, jsons={"other.json"}) == ([], [])


def test_remake_quick_refuses_to_start_without_the_peers_its_figures_are_measured_beside(
    monkeypatch, capsys
):
    remake = load_benchmark("remake_quick.py", "remake_quick")
    assert set(remake.PEERS) == set(remake.QUICK)
    monkeypatch.setitem(remake.PEERS, "replay", ["cpprb", "no_such_peer_module"])
    assert remake.missing_peers(["startup"]) == []
    assert remake.missing_peers(["replay", "startup"])[-1] == "no_such_peer_module"
    ran = []
    monkeypatch.setattr(remake.subprocess, "run", lambda *a, **k: ran.append(a))
    with pytest.raises(SystemExit) as exit_:
        remake.main(["--only", "startup,replay"])
    assert exit_.value.code == 2
    assert ran == []  # nothing ran before the refusal
    err = capsys.readouterr().err
    assert "no_such_peer_module" in err and "pip install -e '.[bench]'" in err

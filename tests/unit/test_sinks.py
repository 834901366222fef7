"""Metrics sinks: the console line, TensorBoard event files and wandb runs (real wandb, offline)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from apex_dqn.config import Config, ConfigError, LoggingConfig, TrainConfig, WandbConfig
from apex_dqn.run.outputs import RunOutputs
from apex_dqn.run.sinks import WANDB_ID_FILE, ConsoleSink, check_sinks
from apex_dqn.run.state import RunTracker


def _records_of_wandb_file(path: Path) -> list:
    """The protobuf records of a .wandb transaction log (LevelDB log format, 32 KiB blocks)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, block, pos = path.read_bytes(), 32768, 7  # 7-byte ':W&B' header
    records, partial = [], b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind in (1, 4):  # FULL, LAST
            record = pb.Record()
            record.ParseFromString(partial + chunk)
            records.append(record)
            partial = b""
        elif kind in (2, 3):  # FIRST, MIDDLE
            partial += chunk
    return records


def _run(tmp_path: Path, **logging) -> tuple[RunOutputs, RunTracker]:
    cfg = Config(
        output_dir=str(tmp_path),
        seed=7,
        logging=LoggingConfig(console=False, **logging),
        train=TrainConfig(plot=False),
    )
    tracker = RunTracker(env_id=cfg.env.id, seed=cfg.seed, target_return=None)
    return RunOutputs(tmp_path, cfg, tracker), tracker


def _report_three(outputs: RunOutputs, tracker: RunTracker, start: int = 0) -> None:
    for i in range(1, 4):
        tracker.env_steps = start + 1000 * i
        tracker.learner_metrics = {"losses/loss": 1.0 / i}
        outputs.report()


def test_wandb_offline_run_holds_config_and_history_and_resumes(tmp_path):
    pytest.importorskip("wandb")
    wandb_cfg = WandbConfig(enabled=True, mode="offline", group="g1", tags=["t1"])
    outputs, tracker = _run(tmp_path, wandb=wandb_cfg)
    _report_three(outputs, tracker)
    outputs.finish()
    run_id = (tmp_path / WANDB_ID_FILE).read_text().strip()
    folders = list((tmp_path / "wandb").glob(f"offline-run-*-{run_id}"))
    assert len(folders) == 1
    records = _records_of_wandb_file(folders[0] / f"run-{run_id}.wandb")
    run = next(r.run for r in records if r.WhichOneof("record_type") == "run")
    assert run.run_id == run_id and run.run_group == "g1" and list(run.tags) == ["t1"]
    config = {(i.key or "/".join(i.nested_key)): i.value_json for i in run.config.update}
    assert config["seed"] == "7"  # the resolved config, logged once
    assert "env" in config and "CartPole-v1" in config["env"]
    history = [
        {(i.key or "/".join(i.nested_key)): i.value_json for i in r.history.item}
        for r in records
        if r.WhichOneof("record_type") == "history"
    ]
    assert [h["charts/env_steps"] for h in history] == ["1000", "2000", "3000"]
    assert float(history[-1]["losses/loss"]) == pytest.approx(1 / 3)
    # A resumed run (same directory) continues the same wandb run id.
    outputs, tracker = _run(tmp_path, wandb=wandb_cfg)
    _report_three(outputs, tracker, start=3000)
    outputs.finish()
    assert (tmp_path / WANDB_ID_FILE).read_text().strip() == run_id
    assert len(list((tmp_path / "wandb").glob(f"offline-run-*-{run_id}"))) >= 1


def test_wandb_runs_of_two_jobs_in_one_process_are_separate(tmp_path):
    wandb = pytest.importorskip("wandb")
    ids = []
    for job in ("0", "1"):
        outputs, tracker = _run(tmp_path / job, wandb=WandbConfig(enabled=True))
        _report_three(outputs, tracker)
        outputs.finish()
        assert wandb.run is None  # finished, as a multirun's next job needs
        ids.append((tmp_path / job / WANDB_ID_FILE).read_text().strip())
    assert ids[0] != ids[1]


def test_tensorboard_event_files_have_every_scalar_against_env_steps(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    outputs, tracker = _run(tmp_path, tensorboard=True)
    _report_three(outputs, tracker)
    outputs.finish()
    acc = EventAccumulator(str(tmp_path / "tensorboard"))
    acc.Reload()
    loss = acc.Scalars("losses/loss")
    assert [e.step for e in loss] == [1000, 2000, 3000]
    assert loss[-1].value == pytest.approx(1 / 3)
    assert "perf/env_steps_per_s" in acc.Tags()["scalars"]


def test_console_line_shows_progress_toward_the_nearest_limit(capsys):
    cfg = Config(train=TrainConfig(max_env_steps=10_000, max_seconds=100.0))
    sink = ConsoleSink(cfg)
    tracker = RunTracker(env_id="CartPole-v1", seed=0, target_return=None)
    tracker.env_steps = 2_500
    record = tracker.record()
    assert sink.progress(record) == pytest.approx(0.25, abs=0.01)
    sink.write(record)
    assert capsys.readouterr().out.startswith(" 25% [")
    # 60 of 100 seconds gone: time is the nearer limit.
    assert sink.progress(record, now=sink._start + 60) == pytest.approx(0.6)


def test_missing_sink_package_fails_before_ray(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name)
    )
    with pytest.raises(ConfigError, match=r"logging\.tensorboard=true needs the tensorboard"):
        check_sinks(Config(logging=LoggingConfig(tensorboard=True)))


def test_wandb_mode_is_checked():
    with pytest.raises(ConfigError, match=r"logging\.wandb\.mode must be one of online, offline"):
        WandbConfig(mode="cloud")

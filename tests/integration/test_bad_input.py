"""Bad input, table-driven, through the real CLI: one clear message, non-zero exit, nothing lost.

Each case names what is wrong and what is allowed; none prints a traceback; none touches an
earlier run's files.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest

from apex_dqn.config import Config
from apex_dqn.files import checkpoint as ckpt
from tests.integration.helpers import run_cli

# (overrides, fragments the error must contain). "{run}" is an existing, valid run directory.
CASES: list[tuple[tuple[str, ...], tuple[str, ...]]] = [
    (("actors.num_actors=0",), ("actors.num_actors", "[1, 4096]", "got 0")),
    (("actors.envs_per_actor=-1",), ("actors.envs_per_actor", "[1, 4096]")),
    (("actors.eps_base=1.5",), ("actors.eps_base", "[0", "1")),
    (("actors.num_cpus=-1",), ("actors.num_cpus", "[0", "64")),
    (("actors.max_env_errors=0",), ("actors.max_env_errors", ">= 1")),
    (("replay.capacity=0",), ("replay.capacity", ">= 1")),
    (("replay.alpha=2",), ("replay.alpha", "[0", "1")),
    (("replay.num_shards=0",), ("replay.num_shards", "[1, 1024]")),
    (("replay.snapshot_every_s=-1",), ("replay.snapshot_every_s", "[0, inf]")),
    (("learner.batch_size=0",), ("learner.batch_size", "[1, 1048576]")),
    (("learner.lr=0",), ("learner.lr", "(0")),
    (("learner.device=tpu",), ("learner.device", "auto, cpu, cuda")),
    (("learner.prefetch=0",), ("learner.prefetch", "[1, 64]")),
    (("learner.target_update_period=0",), ("learner.target_update_period", ">= 1")),
    (("algo.gamma=1.5",), ("algo.gamma", "1")),
    (("algo.n_step=0",), ("algo.n_step", "[1, 100]")),
    (("eval.episodes=0",), ("eval.episodes", "[1, 10000]")),
    (("train.max_seconds=0",), ("train.max_seconds", "(0, inf]")),
    (("checkpoint.keep_last=0",), ("checkpoint.keep_last", "[1, 1000]")),
    (("checkpoint.every_s=-5",), ("checkpoint.every_s", "[0, inf]")),
    (("runtime=spark",), ("runtime", "ray", "local")),
    (("network.torso=resnet",), ("network.torso", "mlp", "nature")),
    (("replay.capacity=32",), ("replay.capacity / replay.num_shards", "learner.batch_size")),
    (("actors.num_actors=abc",), ("actors.num_actors must be an integer, got 'abc'",)),
    (("learner.lr=fast",), ("learner.lr must be a number, got 'fast'",)),
    (("nope=1",), ("unknown key nope",)),
    (("actors.bogus=1",), ("unknown key actors.bogus",)),
    (("actors.num_actor=3",), ("unknown key actors.num_actor;", "did you mean actors.num_actors?")),
    (
        ("+actors.num_actor=3",),
        ("unknown key actors.num_actor;", "did you mean actors.num_actors?"),
    ),
    (("env=pong",), ("env must be one of atari, cartpole, minatar; got 'pong'",)),
    (("env.id=NoSuchEnv-v0",), ("env.id", "NoSuchEnv-v0", "CartPole-v1")),
    (("env.id=MountainCarContinuous-v0",), ("MountainCarContinuous-v0", "Discrete")),
    (("ray.address=nohost",), ("ray.address", "host:port", "'nohost'")),
    # A closed port: the error comes in seconds, not after Ray's GCS retries (minutes).
    (("ray.address=127.0.0.1:9",), ("ray.address=127.0.0.1:9", "no Ray head answers")),
    (("resume=/nonexistent/run",), ("resume=", "no such directory")),
    (("resume={empty}",), ("resume=", "not an apex-dqn run directory")),
    (("resume={corrupt}",), ("checkpoint", "not a readable apex-dqn checkpoint")),
    (("resume={run}", "env.id=Acrobot-v1"), ("env.id=CartPole-v1, not env.id=Acrobot-v1",)),
    (("resume={run}", "network.hidden_sizes=[32]"), ("network.hidden_sizes",)),
]


def _gpus() -> int:
    """GPUs this machine has (torch's count; Ray finds the same ones)."""
    import torch

    return torch.cuda.device_count()


# One more GPU than the machine has: impossible here and on a GPU machine alike.
_TOO_MANY_GPUS = _gpus() + 1
# Impossible resources are only known once Ray is up: clear errors instead of a hang.
RAY_CASES: list[tuple[tuple[str, ...], tuple[str, ...]]] = [
    (
        (f"learner.num_gpus={_TOO_MANY_GPUS}",),
        (f"learner.num_gpus={_TOO_MANY_GPUS}", f"{_TOO_MANY_GPUS - 1} GPUs"),
    ),
    (("actors.num_cpus=8",), ("reserves", "CPUs", "the Ray cluster has 2")),
    # Shares the user set are kept, and checked (unset ones are sized to the machine).
    (
        ("learner.num_learners=2", "learner.num_cpus=1"),
        ("reserves", "learner.num_learners * learner.num_cpus"),
    ),
]


def _digest(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def dirs(tmp_path_factory) -> dict[str, Path]:
    """An earlier run's directory (valid checkpoint), an empty one, and a corrupt one."""
    base = tmp_path_factory.mktemp("bad-input")
    run = base / "run"
    state = {
        "format": ckpt.FORMAT,
        "config": dataclasses.asdict(Config()),
        "env": {"obs_shape": (4,), "obs_dtype": "float32", "num_actions": 2},
    }
    ckpt.save_checkpoint(run / ckpt.LATEST, state)
    (run / "metrics.jsonl").write_text('{"charts/env_steps": 1}\n')
    (base / "empty").mkdir()
    corrupt = base / "corrupt"
    corrupt.mkdir()
    (corrupt / ckpt.LATEST).write_bytes(b"\x00not a checkpoint at all")
    return {"run": run, "empty": base / "empty", "corrupt": corrupt}


def _check(overrides, fragments, dirs, tmp_path, ray_ok: bool = False) -> None:
    args = [o.format(**{k: str(v) for k, v in dirs.items()}) for o in overrides]
    before = {name: _digest(path) for name, path in dirs.items()}
    out = tmp_path / "new-run"
    proc = run_cli(*args, f"output_dir={out}", "ray.num_cpus=2", timeout=120)
    text = proc.stderr + proc.stdout
    assert proc.returncode != 0, text[-2000:]
    assert "Traceback" not in text, text[-3000:]
    for fragment in fragments:
        assert fragment in proc.stderr, f"{fragment!r} not in: {proc.stderr[-1500:]}"
    # No lost output: earlier runs' files are byte-for-byte what they were.
    assert {name: _digest(path) for name, path in dirs.items()} == before
    if not ray_ok:
        assert not out.exists(), "a config error must fail before the run writes anything"
        # One line, in one form, with the exit code of a usage error.
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert proc.returncode == 2, text[-2000:]
        assert len(lines) == 1 and lines[0].startswith("apex-dqn: error: "), proc.stderr[-2000:]


@pytest.mark.parametrize(("overrides", "fragments"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_input_fails_with_one_clear_message(overrides, fragments, dirs, tmp_path):
    _check(overrides, fragments, dirs, tmp_path)


@pytest.mark.ray
@pytest.mark.parametrize(
    ("overrides", "fragments"), RAY_CASES, ids=[" ".join(c[0]) for c in RAY_CASES]
)
def test_impossible_resources_fail_instead_of_hanging(overrides, fragments, dirs, tmp_path):
    _check(overrides, fragments, dirs, tmp_path, ray_ok=True)

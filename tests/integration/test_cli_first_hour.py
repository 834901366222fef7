"""What a newcomer meets first, through the real CLI: the help text, and CPU shares sized to a
machine smaller than the defaults assume."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.integration.helpers import run_cli


def test_help_says_what_it_is_how_to_start_and_where_things_are():
    proc = run_cli("--help", timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = proc.stdout
    assert text.startswith("apex-dqn: distributed Ape-X DQN on Ray."), text[:300]
    assert "powered by Hydra" not in text
    # The groups with their options (from conf/), examples, outputs and the key reference.
    for fragment in (
        "env: atari, cartpole, minatar",
        "experiment: pong",
        "logging: default, tensorboard, wandb",
        "== Examples ==",
        "apex-dqn experiment=pong",
        "apex-dqn -m seed=0,1,2",
        "Outputs: outputs/<date>/<time>-<env>-seed<seed>/",
        "learning_curve.png and training.png",
        "Every key, its default and its allowed values",
    ):
        assert fragment in text, f"{fragment!r} not in the help:\n{text}"
    assert "max_pending_pushes" not in text, "the help dumps the whole config"


@pytest.mark.ray
def test_unset_cpu_shares_are_sized_to_the_machine_and_the_run_says_so(tmp_path: Path):
    out = tmp_path / "run"
    # Six actors at the default quarter CPU, a learner, a shard and an evaluator: 2.6 CPUs.
    # ray.address=local names the run's own instance, as no address does.
    proc = run_cli(
        "ray.address=local",
        "ray.num_cpus=2",
        "actors.num_actors=6",
        "train.max_env_steps=3000",
        "train.plot=false",
        f"output_dir={out}",
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    first = proc.stdout.splitlines()[0]
    assert first.startswith("apex-dqn: CPU shares sized to the 2 CPUs of this Ray instance"), first
    saved = yaml.safe_load((out / "config.yaml").read_text())
    shares = (
        6 * saved["actors"]["num_cpus"]
        + saved["replay"]["num_cpus"]
        + saved["learner"]["num_cpus"]
        + saved["eval"]["num_cpus"]
        + saved["ray"]["parameter_server_num_cpus"]
    )
    assert 1.99 <= shares <= 2.0 and saved["actors"]["num_cpus"] < 0.25
    assert f"actors.num_cpus={saved['actors']['num_cpus']:g}" in first

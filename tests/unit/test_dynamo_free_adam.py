"""The learner's Adam without TorchDynamo's import (apex_dqn.algo.torch_compat.dynamo_free_adam):
the same steps as torch's, and a learner that never loads torch._dynamo (1.5-2 s of start-up)."""

from __future__ import annotations

import subprocess
import sys

SAME_STEPS = """
import sys, torch
from apex_dqn.algo.torch_compat import dynamo_free_adam

def net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))

def train(model, step, optimizer):
    g = torch.Generator().manual_seed(1)
    for _ in range(7):
        optimizer.zero_grad(set_to_none=True)
        loss = model(torch.randn(32, 6, generator=g)).pow(2).mean()
        loss.backward()
        step()
    return [p.detach().clone() for p in model.parameters()], optimizer.state_dict()

ours_net = net()
ours_opt, ours_step = dynamo_free_adam(ours_net.parameters(), lr=1e-2, eps=1e-8)
ours, ours_state = train(ours_net, ours_step, ours_opt)
assert "torch._dynamo" not in sys.modules, "dynamo_free_adam imported torch._dynamo"
ref_net = net()
ref_opt = torch.optim.Adam(ref_net.parameters(), lr=1e-2, eps=1e-8, fused=True)
ref, ref_state = train(ref_net, ref_opt.step, ref_opt)
assert "torch._dynamo" in sys.modules  # torch's own step does import it
assert all(torch.equal(a, b) for a, b in zip(ours, ref)), "parameters differ"
for i, entry in ref_state["state"].items():
    for key, value in entry.items():
        assert torch.equal(value, ours_state["state"][i][key]), (i, key)
assert ours_state["param_groups"] == ref_state["param_groups"]
print("ok")
"""

NO_DYNAMO_IN_A_RUN = """
import sys
from pathlib import Path
import tempfile
from apex_dqn.config import Config, TrainConfig
from apex_dqn.envs.factory import inspect_env
from apex_dqn.runtime.local import train_local

cfg = Config(runtime="local", train=TrainConfig(max_env_steps=3000, plot=False))
with tempfile.TemporaryDirectory() as out:
    summary = train_local(cfg, inspect_env(cfg.env), Path(out))
assert summary["learner_steps"] > 0, summary
print("torch._dynamo" in sys.modules)
"""


def _run(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip().splitlines()[-1]


def test_the_steps_are_bit_for_bit_those_of_torch_adam():
    assert _run(SAME_STEPS) == "ok"


def test_a_learner_trains_without_loading_torch_dynamo():
    assert _run(NO_DYNAMO_IN_A_RUN) == "False"

"""Data-parallel training with torchrun on CPU: 2 processes, gloo. (Killed and resumed, through a DVC
stage: tests/test_field_route.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lic.checkpoint import read_checkpoint

SCRIPT = Path(__file__).with_name("ddp_train.py")
ROOT = SCRIPT.parents[1]


def _cmd(nproc: int, *args: object) -> list[str]:
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"] if nproc else \
        [sys.executable]
    return [*launch, str(SCRIPT), *map(str, args)]


ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))


@pytest.fixture(scope="module")
def one_patch(tmp_path_factory: pytest.TempPathFactory, test_images: Path) -> Path:
    """A folder of one 64x64 image, mirror-symmetric, so every drawn patch (flipped or not) is it."""
    folder = tmp_path_factory.mktemp("one")
    half = np.asarray(Image.open(test_images / "rocket.png").convert("RGB"))[:64, :32]
    Image.fromarray(np.concatenate([half, half[:, ::-1]], axis=1)).save(folder / "patch.png")
    return folder


def test_two_ranks_match_one_process_on_the_concatenated_batch(tmp_path: Path, one_patch: Path) -> None:
    """2 ranks x batch 2 against 1 process x batch 4 of the same patch. The loss of the
    concatenated batch is the mean of the ranks' losses, and DDP's averaged gradient is its
    gradient; only the noise draws differ (each rank has its own stream), which moves the loss by
    0.03% at step 1 (equal weights) and about 0.2% by step 6 (measured), so rtol is 1%. A run
    whose gradients were not averaged would leave the ranks on different weights: the checkpoint
    check refuses that, and rank 0 records every rank's weights fingerprint."""
    one = subprocess.run(_cmd(0, one_patch, tmp_path / "one.ckpt", 4, 6), env=ENV, capture_output=True, text=True)
    assert one.returncode == 0, one.stderr[-3000:]
    run = subprocess.run(_cmd(2, one_patch, tmp_path / "ddp.ckpt", 2, 6), env=ENV, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    single = json.loads((tmp_path / "one.ckpt.rank0.json").read_text())
    ranks = [json.loads((tmp_path / f"ddp.ckpt.rank{r}.json").read_text()) for r in (0, 1)]
    assert list(single) == list(ranks[0]) == list(ranks[1]) == [str(s) for s in range(1, 7)]
    assert ranks[0] != ranks[1], "both ranks drew the same noise"
    mean = [(a + b) / 2 for a, b in zip(ranks[0].values(), ranks[1].values())]
    np.testing.assert_allclose(mean, list(single.values()), rtol=1e-2)
    assert mean[-1] < 0.9 * mean[0], "the data-parallel run did not learn"
    state = read_checkpoint(tmp_path / "ddp.ckpt")["train_state"]
    assert state["world_size"] == 2 and len(set(state["rank_weights"])) == 1 and len(state["rng_ranks"]) == 2


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_nodes_on_the_loopback_end_on_the_weights_of_one_node_with_two_processes(tmp_path: Path,
                                                                                     one_patch: Path) -> None:
    """``torchrun --nnodes 2`` as docs/scaling.md gives it (c10d rendezvous), both nodes on this
    machine with one process each, against ``--standalone --nproc-per-node 2``: the same two ranks,
    so the same weights, bit for bit."""
    one = subprocess.run(_cmd(2, one_patch, tmp_path / "one-node.ckpt", 2, 4), env=ENV, capture_output=True, text=True)
    assert one.returncode == 0, one.stderr[-3000:]
    endpoint = f"127.0.0.1:{_free_port()}"
    nodes = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node-rank", str(r),
                               "--rdzv-backend", "c10d", "--rdzv-endpoint", endpoint, "--rdzv-id", "lic-test",
                               "--nproc-per-node", "1", str(SCRIPT), str(one_patch), str(tmp_path / "two-nodes.ckpt"),
                               "2", "4"], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for r in (0, 1)]
    outs = [n.communicate(timeout=300) for n in nodes]
    assert all(n.returncode == 0 for n in nodes), [err[-2000:] for _, err in outs]
    state = read_checkpoint(tmp_path / "two-nodes.ckpt")
    assert state["train_state"]["world_size"] == 2 and len(set(state["train_state"]["rank_weights"])) == 1
    assert state["fingerprint"] == read_checkpoint(tmp_path / "one-node.ckpt")["fingerprint"]


@pytest.mark.parametrize("model", ["tiny_ckpt", "ctx_ckpt"])
def test_retrain_under_torchrun(tmp_path: Path, model: str, train_images: Path, request: pytest.FixtureRequest) -> None:
    """``torchrun -m lic retrain``: phase 4 (the entropy decoders and g_s in DDP; a context
    model's slice transforms too) on 2 ranks ends with one checkpoint from rank 0, one report
    line, and ranks on equal weights (checked before saving)."""
    from lic.checkpoint import load_checkpoint
    from lic.config import LatentsConfig
    from lic.latents import make_latents

    tiny_ckpt = request.getfixturevalue(model)
    data = make_latents(tiny_ckpt, tmp_path / "l.zarr", train_images,
                        cfg=LatentsConfig(patches=8, patch_size=64, chunk=4), progress=False)
    out = tmp_path / "r.ckpt"
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                          "-m", "lic", "retrain", "hyper-decoder", "-m", str(tiny_ckpt), "--latents", str(data),
                          "-o", str(out), "--steps", "3", "--batch-size", "2"],
                         env=ENV, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count(f"{out}: hyper-decoder") == 1
    _, obj = load_checkpoint(out)
    assert obj["meta"]["retrain"]["world_size"] == 2
    base, _ = load_checkpoint(tiny_ckpt)
    model, _ = load_checkpoint(out)
    assert not all(a.equal(b) for a, b in zip(base.h_s.parameters(), model.h_s.parameters()))
    if model.config.slices:
        assert not all(a.equal(b) for a, b in zip(base.cc.parameters(), model.cc.parameters()))

"""The field route (``make zoo``; tests/rehearsal.py) on a spatial context model: a file of its own, so
that the suite's workers rehearse both routes at once."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rehearsal import rehearse, stage_names


def test_the_field_route_runs_on_a_spatial_context_model(tmp_path_factory: pytest.TempPathFactory, prefect_api: str,
                                                          test_images: Path) -> None:
    """The same route with ``zoo.architecture: cheng2020-anchor`` (N = M = 128), at qualities 1 and 2,
    one round and TCQ's families only (USQ's retraining runs the same code as on the zoo's default
    model, and on this kind in tests/test_models.py): its imports, TCQ fine-tunes (one trellis per
    position), datasets, retraining (phase 4 online and stale) and evaluations, and CompressAI's
    published curve of that model on the report."""
    repo, env = rehearse(tmp_path_factory.mktemp("cheng"), prefect_api, test_images, (1, 2),
                         **{"zoo.architecture": "cheng2020-anchor", "retrain.rounds": 1, "quantizers": ["tcq"]})
    assert stage_names(repo, env) == set(yaml.safe_load((repo / "dvc.lock").read_text())["stages"])
    from lic.checkpoint import read_checkpoint

    for family in ("usq-base", "tcq-base", "tcq-hyper-decoder"):
        config = read_checkpoint(repo / "artifacts" / "models" / family / "q1.ckpt")["config"]
        assert config["architecture"] == "cheng2020-anchor" and config["N"] == config["M"] == 128
    assert "CompressAI cheng2020-anchor (published)" in (repo / "reports" / "zoo" / "README.md").read_text()

"""The generate step on a real local Ray cluster (one engine replica on a Ray Core actor) against the local engine.

Run: .venv/bin/python -m pytest tests/test_synthesis_ray.py -q      (starts Ray with one CPU; about a minute)
"""

from __future__ import annotations

import pytest

pytest.importorskip("ray", reason="ray is not installed: `pip install 'ray[default]>=2.40'` (the dev extra has it)")

from test_synthesis import PERMISSIVE, labels_only_pool, run_recipe, synthesis_recipe  # noqa: E402


@pytest.fixture(scope="module")
def ray_address():
    """A local single-node Ray cluster with one CPU, for this module."""
    import ray

    with pytest.MonkeyPatch.context() as patch:
        # Ray renices its workers to 15; next to a busy CPU job the replica then took minutes to import torch
        patch.setenv("RAY_worker_niceness", "0")
        ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.mark.integration
def test_ray_replica_keeps_what_the_local_engine_keeps(tmp_path, ray_address, tiny_sft, synthfacs_small, monkeypatch):
    from data_synthesis import ray_scale

    pools_started = []
    start = ray_scale.RayEnginePool.start

    def recording_start(*args, **kwargs):
        pools_started.append(start(*args, **kwargs))
        return pools_started[-1]

    monkeypatch.setattr(ray_scale.RayEnginePool, "start", recording_start)
    pool = labels_only_pool(synthfacs_small["val"], tmp_path / "pool" / "pool.jsonl", 4)
    local = synthesis_recipe(tmp_path, tiny_sft, pool, tmp_path / "local", engine_batch_size=3, **PERMISSIVE)
    on_ray = synthesis_recipe(
        tmp_path,
        tiny_sft,
        pool,
        tmp_path / "on_ray",
        engine_batch_size=2,
        ray_address=ray_address,
        ray_replicas=1,
        **PERMISSIVE,
    )
    run_recipe(local)
    assert not pools_started
    run_recipe(on_ray)
    assert len(pools_started) == 1 and pools_started[0].actors == []  # used, then closed
    assert (tmp_path / "local" / "shards" / "shard-1.jsonl").read_bytes()  # a kept set to compare
    for name in ("round_1/verified.jsonl", "shards/shard-1.jsonl"):  # every candidate's scores, and the kept set
        assert (tmp_path / "local" / name).read_bytes() == (tmp_path / "on_ray" / name).read_bytes(), name

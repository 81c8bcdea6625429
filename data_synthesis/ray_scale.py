"""Scale-out of the generate step on Ray Core: one actor per engine replica, each owning a `load_engine` engine.

`open_generator` returns an engine for the generate step: a `RayEnginePool` when `ray` is installed and a cluster
address is given, else the local engine. The pool has the Engine interface (`spec`, `adapter_names`, `generate`,
`close`); it deals each call's requests round-robin to the replicas and puts the results back in request order.
Every request carries its own seed, which both backends honour per request (HF samples a seeded request alone,
vLLM seeds each request's sampler), so the candidates, and hence the kept set, are the same whatever the number
of replicas, and the same as the local engine's.

Not `ray[llm]`: its extra pins an older vLLM than this stack's. Our engine runs inside plain Ray Core actors.
On a multi-node cluster every node needs this package installed and the model and adapter folders at the same
paths (or on shared storage); media travel inside the requests as decoded arrays.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from inference.engine import Engine, Generation, GenerationRequest, SamplingSettings

logger = logging.getLogger(__name__)

RAY_MISSING = "ray is not installed: `pip install 'ray[default]>=2.40'` (or `affect-mllm[ray]`)"


def ray_available() -> bool:
    """Whether the ray package is installed."""
    return importlib.util.find_spec("ray") is not None


@dataclass(frozen=True)
class EngineSpec:
    """What each replica loads: `load_engine(model, backend, adapters, dtype, **options)`."""

    model: str
    backend: str = "hf"
    adapters: Mapping[str, str] = field(default_factory=dict)
    dtype: str = "float32"
    options: Mapping[str, object] = field(default_factory=dict)

    def load(self) -> Engine:
        """Load the engine in this process."""
        from inference.engine import load_engine

        return load_engine(
            self.model,
            backend=self.backend,
            adapters=dict(self.adapters) or None,
            dtype=self.dtype,
            **dict(self.options),
        )


class EngineReplica:
    """The body of one Ray actor: an engine replica (wrapped by `ray.remote` when the pool starts)."""

    def __init__(self, engine_spec: EngineSpec) -> None:
        self.engine = engine_spec.load()

    def describe(self):
        """(model spec, adapter names) of the replica's engine."""
        return self.engine.spec, tuple(self.engine.adapter_names)

    def generate(self, requests: Sequence[GenerationRequest], sampling: SamplingSettings) -> list[list[Generation]]:
        """The engine's generate."""
        return self.engine.generate(requests, sampling)

    def close(self) -> None:
        """Free the engine."""
        self.engine.close()


class RayEnginePool:
    """Engine replicas on Ray actors, behind the Engine interface."""

    def __init__(self, actors: Sequence, spec, adapter_names: Sequence[str], owns_ray: bool) -> None:
        """Wrap started actors (use `RayEnginePool.start`)."""
        self.actors = list(actors)
        self.spec = spec
        self.adapter_names = tuple(adapter_names)
        self._owns_ray = owns_ray

    @classmethod
    def start(
        cls,
        engine_spec: EngineSpec,
        address: str,
        replicas: int = 1,
        cpus_per_replica: float = 1.0,
        gpus_per_replica: float = 0.0,
    ) -> RayEnginePool:
        """Connect to the Ray cluster at `address` (or use the one this process already joined) and start replicas.

        Args:
            engine_spec: what each replica loads.
            address: 'auto', 'host:port', 'ray://host:port' or 'local' (a new single-node cluster).
            replicas: number of actors.
            cpus_per_replica: CPUs each actor reserves.
            gpus_per_replica: GPUs each actor reserves.

        Returns:
            The pool, its replicas loaded.
        """
        import ray

        owns_ray = not ray.is_initialized()
        if owns_ray:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        actor_class = ray.remote(num_cpus=cpus_per_replica, num_gpus=gpus_per_replica)(EngineReplica)
        actors = [actor_class.remote(engine_spec) for _ in range(replicas)]
        descriptions = ray.get([actor.describe.remote() for actor in actors])
        spec, adapter_names = descriptions[0]
        logger.info(
            "Ray engine pool: %d replica(s) of %s (%s) at %s", replicas, spec.name, engine_spec.backend, address
        )
        return cls(actors, spec, adapter_names, owns_ray)

    def generate(self, requests: Sequence[GenerationRequest], sampling: SamplingSettings) -> list[list[Generation]]:
        """Deal the requests round-robin to the replicas; results in request order."""
        import ray

        n = len(self.actors)
        shares = [list(range(i, len(requests), n)) for i in range(n)]
        futures = [
            actor.generate.remote([requests[j] for j in share], sampling)
            for actor, share in zip(self.actors, shares, strict=True)
            if share
        ]
        results: list[list[Generation] | None] = [None] * len(requests)
        for share, generations in zip([s for s in shares if s], ray.get(futures), strict=True):
            for j, candidates in zip(share, generations, strict=True):
                results[j] = candidates
        return results

    def close(self) -> None:
        """Stop the replicas (and the Ray session, when this pool started it)."""
        import ray

        ray.get([actor.close.remote() for actor in self.actors])
        for actor in self.actors:
            ray.kill(actor)
        self.actors = []
        if self._owns_ray:
            ray.shutdown()


def open_generator(
    engine_spec: EngineSpec,
    ray_address: str | None = None,
    replicas: int = 1,
    cpus_per_replica: float = 1.0,
    gpus_per_replica: float = 0.0,
) -> Engine:
    """The generate step's engine: Ray replicas when ray is installed and an address is given, else local.

    Args:
        engine_spec: the engine to load (locally or in each replica).
        ray_address: the Ray cluster address, or None for the local engine.
        replicas: Ray actors (ignored locally).
        cpus_per_replica: CPUs per actor.
        gpus_per_replica: GPUs per actor.

    Returns:
        An object with the Engine interface.
    """
    if ray_address and ray_available():
        return RayEnginePool.start(engine_spec, ray_address, replicas, cpus_per_replica, gpus_per_replica)
    if ray_address:
        logger.warning("ray_address %r given but %s; generating on the local engine", ray_address, RAY_MISSING)
    return engine_spec.load()

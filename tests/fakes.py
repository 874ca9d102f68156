"""The stand-ins tests share: the Kubernetes API as a run sees it (RecordingApi), a Triton control that answers
from a dict (StandInTriton), a journal that keeps every event (Recorder), and the small specs and engines they
drive. Each satisfies the Protocol its real counterpart does (kube/api.ChildApi, engine.ServerControl), so no test
needs a `type: ignore` to pass one in."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelanalysis.adapters.triton_control import ModelConfigSummary, ModelLoadError, summarize_model_config
from modelanalysis.core.perf import PerfMeasurement
from modelanalysis.core.results import AnalysisResult
from modelanalysis.core.spec import MeasurementSettings, SweepSpec
from modelanalysis.core.sweep import Point
from modelanalysis.engine import EngineEvent, EventKind, SweepEngine
from modelanalysis.kube.ownership import NameTaken
from modelanalysis.kube.settings import OperatorSettings

NS = "team-a"

SPEC: dict[str, Any] = {"models": [{"name": "add_sub"}], "modelRepository": {"pvc": {"claimName": "models"}}}

DEFAULTS = OperatorSettings()

class RecordingApi:
    """The API as the run sees it, recording what it creates and the status it writes."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body
        self.created: list[dict[str, Any]] = []
        self.statuses: list[dict[str, Any]] = []
        self.refusals: dict[str, str] = {}  # kind -> what the API server says to a dry run of it
        # (kind, name) held by an object the analysis does not own: what KubeApi.read_owned finds on the real API
        # server by the owner references (tests/test_kube_apply.py checks that for real).
        self.foreign: set[tuple[str, str]] = set()

    def get_analysis(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.body

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.statuses.append(status)

    def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        self.created.append(manifest)
        return manifest

    def dry_run(self, manifest: dict[str, Any]) -> str | None:
        return self.refusals.get(manifest["kind"])

    def read(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return None

    def read_owned(self, kind: str, namespace: str, name: str, owner: dict[str, Any]) -> dict[str, Any] | None:
        if (kind, name) in self.foreign:
            raise NameTaken(kind, name, "it has no owner (made by hand or by another tool)")
        return self.read(kind, namespace, name)

    def delete(self, kind: str, namespace: str, name: str, owner_uid: str) -> None:
        pass

    def list(self, kind: str, namespace: str, selector: str = "") -> list[dict[str, Any]]:
        return []


# Nothing listens here: the metrics sampler records a missed scrape and goes on (resource columns empty).
NO_METRICS = "http://127.0.0.1:9/metrics"


@dataclass
class StandInTriton:
    max_batch_size: dict[str, int]
    fails_to_load: set[str] = field(default_factory=set)
    preloaded: set[str] = field(default_factory=set)
    loaded: set[str] = field(default_factory=set)
    calls: list[str] = field(default_factory=list)
    decoupled: set[str] = field(default_factory=set)  # models that stream (model_transaction_policy.decoupled)

    def wait_ready(self, timeout_s: float = 10.0) -> None:
        pass

    def server_version(self) -> str:
        return "2.51.0"

    def is_model_ready(self, model: str) -> bool:
        return model in self.preloaded or model in self.loaded

    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)

    def load(self, model: str, config: dict[str, Any] | None = None) -> None:
        counts = [g["count"] for g in (config or {}).get("instance_group", [])]
        self.calls.append(f"load {model}" + (f" with {counts[0]} instances" if counts else ""))
        if model in self.fails_to_load or (config or {}).get("max_batch_size", 0) > 64:
            raise ModelLoadError(f"failed to load '{model}': ModuleNotFoundError")
        self.loaded.add(model)
        if config is not None:
            self.overrides[model] = config

    def raw_model_config(self, model: str) -> dict[str, Any]:
        own = {"name": model, "max_batch_size": self.max_batch_size[model],
               "instance_group": [{"name": model, "count": 1, "kind": "KIND_CPU"}]}  # fmt: skip
        if model in self.decoupled:
            own["model_transaction_policy"] = {"decoupled": True}
        return self.overrides.get(model, own)

    def unload(self, model: str, timeout_s: float = 60.0) -> None:
        self.calls.append(f"unload {model}")
        self.loaded.discard(model)
        self.preloaded.discard(model)

    def model_config(self, model: str) -> ModelConfigSummary:
        return summarize_model_config(self.raw_model_config(model))


def numbers(point: Point) -> PerfMeasurement:
    thr = 100.0 * point.batch_size * point.load.value
    return PerfMeasurement(
        throughput_infer_per_sec=thr, latency_p50_ms=1, latency_p90_ms=2, latency_p95_ms=3, latency_p99_ms=4,
        throughput_ci_low=thr * 0.98, throughput_ci_high=thr * 1.02, windows=3, converged=True,
    )  # fmt: skip


@dataclass
class Recorder:
    events: list[EngineEvent] = field(default_factory=list)

    def __call__(self, event: EngineEvent, result: AnalysisResult) -> None:
        self.events.append(event)

    def kinds(self, kind: EventKind) -> list[EngineEvent]:
        return [e for e in self.events if e.kind == kind]


def spec(models: list[str], batch: list[int], concurrency: list[int], **measurement: object) -> SweepSpec:
    settings = MeasurementSettings.model_validate({"baselineDurationMs": 0, "metricsIntervalMs": 100, **measurement})
    return SweepSpec(
        models=[{"name": m} for m in models], batch_sizes=batch, concurrency=concurrency, measurement=settings
    )


def engine(s: SweepSpec, triton: StandInTriton, journal: Recorder, run: object = None, **kw: object) -> SweepEngine:
    runner = run or (lambda point, settings: numbers(point))
    return SweepEngine(s, triton, NO_METRICS, runner, journal, **kw)  # type: ignore[arg-type]


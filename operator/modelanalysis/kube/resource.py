"""The ModelAnalysis custom resource: its spec (the core's sweep plus where things run) and its status.

The CRD's OpenAPI schema is generated from these models (see crd.py), so admission and the operator agree.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema, field_validator, model_validator

from modelanalysis.core.inputs import SharedMemory
from modelanalysis.core.load import Load, point_key
from modelanalysis.core.spec import CONTROL, NO_UNPRINTABLE, UNPRINTABLE, SweepSpec, cel_string, has_control
from modelanalysis.core.together import combinations_together
from modelanalysis.core.variants import plan_variants
from modelanalysis.core.wire import WireModel

GROUP = "modelanalyzer.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "ModelAnalysis"
PLURAL = "modelanalyses"
SINGULAR = "modelanalysis"
SHORT_NAMES = ["ma"]

# Kubernetes values that this project passes through untouched (resources, affinity, tolerations, env):
# their schema is Kubernetes' own, so the CRD keeps them open rather than copying it.
KubeObject = Annotated[dict[str, Any], Field(json_schema_extra={"x-kubernetes-preserve-unknown-fields": True})]
# One entry of such a list (a toleration, an environment variable): a handful of fields.
KubeItem = Annotated[
    dict[str, Any], Field(max_length=16, json_schema_extra={"x-kubernetes-preserve-unknown-fields": True})
]


# A Kubernetes object name (DNS subdomain, RFC 1123): what a claim or Secret name must be.
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"

# A sub-path is joined to where the claim is mounted; a `..` segment or a leading `/` would reach outside the
# claim (on a node that lets the write through, onto its root filesystem). It also ends up in a container's
# arguments, where a NUL cannot go (the API server lets it through; the container would fail to start). The
# CRD carries the same rule as CEL (crd.py), so kubectl refuses it with this sentence.
SUB_PATH_CEL = f"!self.startsWith('/') && !self.matches('(^|/)[.][.](/|$)') && !self.matches({cel_string(CONTROL)})"
SUB_PATH_MESSAGE = (
    "subPath must be a folder inside the claim: relative (no leading /) and without .. segments or control "
    "characters; write e.g. runs/2024 or leave it empty for the claim's root"
)


# spec.inputs.data (and models[].inputs.data): random, zero, or a file inside the model repository claim, which
# the load-generator Job mounts read-only. Shared memory needs perf_analyzer inside Triton's IPC namespace (and
# for cuda, on its GPU), which a Job of its own never is.
INPUT_DATA_CEL = (
    "self == 'random' || self == 'zero' || (!self.startsWith('/') && !self.matches('(^|/)[.][.](/|$)') && "
    f"!self.matches({cel_string(CONTROL)}))"
)
INPUT_DATA_MESSAGE = (
    "inputs.data must be random, zero, or a file inside the model repository claim: a path relative to the "
    "repository's folder, with no leading / and no .. segments (e.g. inputs/text_encoder.json)"
)
INPUT_DATA_NEEDS_CLAIM = (
    "inputs.data names a file, which the load-generator Job reads from the model repository claim: give "
    "modelRepository.pvc (a repository at a URI has no claim to mount), or use random or zero"
)
SHARED_MEMORY_CEL = "self == 'none'"
SHARED_MEMORY_MESSAGE = (
    "inputs.sharedMemory must be none in a ModelAnalysis: perf_analyzer runs in a Job of its own, outside the "
    "Triton pod's shared memory (system) and GPU (cuda); the CLI on the server's machine can use them"
)


def _inside_claim(sub_path: str) -> str:
    if sub_path.startswith("/") or ".." in sub_path.split("/") or has_control(sub_path):
        raise ValueError(SUB_PATH_MESSAGE)
    return sub_path


# Triton's arguments and environment reach a process as C strings: the API server accepts a NUL in them, and
# the container then fails to start, or a newline or escape sequence turns up in the server's command line.
# CEL cannot read inside an env entry (an open Kubernetes object), so env is checked by the operator only.
ARGS_CEL = f"self.all(a, !a.matches({cel_string(CONTROL)}))"
ARGS_MESSAGE = (
    "triton.args must be plain text: remove the control characters (such as NUL, escape or a line break) "
    "from each argument"
)
ENV_MESSAGE = "triton.env values cannot hold a NUL character, which no process environment can carry; remove it"


# A Kubernetes resource quantity (1, 500m, 16Gi, 1e3), as the API server parses it. Checked here because the
# API server's refusal of a bad one does not say which field held it.
QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")


def _quantities(resources: dict[str, Any], field: str) -> dict[str, Any]:
    for section, values in resources.items():
        for name, value in (values.items() if isinstance(values, dict) else ()):
            if not QUANTITY.match(str(value)):
                raise ValueError(
                    f"{field}.{section}.{name} is {value!r}, not a Kubernetes quantity; write e.g. 2, 500m or 16Gi"
                )
    return resources


class PvcLocation(WireModel):
    """A folder inside a PersistentVolumeClaim of the analysis' namespace."""

    claim_name: str = Field(
        min_length=1, max_length=253, pattern=DNS_SUBDOMAIN, description="PersistentVolumeClaim name."
    )
    sub_path: str = Field(
        "", max_length=1024, description="Folder in the claim, relative to its root, with no .. segments."
    )

    _sub_path_inside = field_validator("sub_path")(_inside_claim)


class ModelRepository(WireModel):
    """Where Triton finds the models: a claim in this namespace, or a URI Triton reads itself."""

    pvc: PvcLocation | None = Field(None, description="A PersistentVolumeClaim holding the model repository.")
    uri: str | None = Field(
        None,
        max_length=2048,
        pattern=rf"^(s3|gs|as)://[^{UNPRINTABLE}]+$",
        description="A repository URI Triton understands: s3://, gs:// or as:// (Azure), with no spaces.",
    )
    credentials_secret: str | None = Field(
        None,
        max_length=253,
        pattern=DNS_SUBDOMAIN,
        description="Secret whose keys become the Triton container's environment (e.g. AWS_ACCESS_KEY_ID).",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> ModelRepository:
        if (self.pvc is None) == (self.uri is None):
            raise ValueError("modelRepository needs exactly one of pvc or uri")
        return self


# An image tag, as the registry's API allows it.
IMAGE_TAG = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
MAX_TRITON_VERSIONS = 8
VERSIONS_CEL = "!has(self.versions) || (!has(self.version) && !has(self.image))"
VERSIONS_MESSAGE = (
    "triton.versions names every release to compare: leave out triton.version and triton.image with it "
    "(each version runs the operator's Triton repository at that tag)"
)


class TritonSettings(WireModel):
    """The Triton server pod."""

    # The lists and maps below pass Kubernetes' own pod fields through (the API server checks their contents
    # when the pod is created); their lengths are bounded here, far above what a Triton pod needs.
    version: str | None = Field(
        None,
        max_length=128,
        pattern=IMAGE_TAG,
        description="Triton release (an image tag); the image is <the operator's Triton repository>:<version>.",
    )
    versions: list[Annotated[str, Field(max_length=128, pattern=IMAGE_TAG)]] | None = Field(
        None,
        min_length=1,
        max_length=MAX_TRITON_VERSIONS,
        description=(
            "Triton releases (image tags) to compare in one analysis: each runs on a Triton pod of its own, every "
            "point carries its version, and the best point per version and overall is reported."
        ),
    )
    image: str | None = Field(
        None,
        max_length=512,
        pattern=NO_UNPRINTABLE,
        description=(
            "A full image reference; overrides version. Its repository must be one the operator allows "
            "(chart value triton.allowedImageRepositories)."
        ),
    )
    resources: KubeObject = Field(
        default_factory=lambda: {"limits": {"nvidia.com/gpu": "1"}},
        max_length=8,
        description="Container resources (default: one nvidia.com/gpu).",
    )
    node_selector: dict[str, Annotated[str, Field(max_length=63)]] = Field(
        default_factory=dict, max_length=64, description="Node labels the pod must match."
    )
    tolerations: list[KubeItem] = Field(
        default_factory=list, max_length=64, description="Tolerations, e.g. for GPU taints."
    )
    affinity: KubeObject = Field(default_factory=dict, max_length=8, description="Pod affinity rules.")
    args: list[Annotated[str, Field(max_length=4096)]] = Field(
        default_factory=list, max_length=256, description="Extra tritonserver arguments."
    )
    env: list[KubeItem] = Field(default_factory=list, max_length=256, description="Extra environment variables.")
    run_as_user: int | None = Field(
        None,
        ge=1,
        le=2_147_483_647,
        description=(
            "Run Triton as this non-root user ID (with runAsNonRoot). The NGC Triton image runs as root unless "
            "told otherwise; it also has a user triton-server (1000). Default: the operator's setting."
        ),
    )
    ready_timeout_seconds: int | None = Field(
        None, ge=10, le=86_400, description="How long to wait for the server to be ready (operator default: 600)."
    )

    @field_validator("resources")
    @classmethod
    def _resources_are_quantities(cls, resources: dict[str, Any]) -> dict[str, Any]:
        return _quantities(resources, "triton.resources")

    @field_validator("versions")
    @classmethod
    def _unique_versions(cls, versions: list[str] | None) -> list[str] | None:
        if versions is not None and len(set(versions)) != len(versions):
            raise ValueError("triton.versions lists a version twice; list each once")
        return versions

    @model_validator(mode="after")
    def _versions_alone(self) -> TritonSettings:
        if self.versions is not None and (self.version is not None or self.image is not None):
            raise ValueError(VERSIONS_MESSAGE)
        return self

    @property
    def compared_versions(self) -> list[str]:
        """The versions an analysis compares (empty: it runs on one Triton, version or image)."""
        return list(self.versions or [])

    @field_validator("args")
    @classmethod
    def _plain_args(cls, args: list[str]) -> list[str]:
        if any(has_control(arg) for arg in args):
            raise ValueError(ARGS_MESSAGE)
        return args

    @field_validator("env")
    @classmethod
    def _no_nul_in_env(cls, env: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if any("\x00" in str(item.get("value", "")) for item in env):
            raise ValueError(ENV_MESSAGE)
        return env


class ResultsLocation(WireModel):
    pvc: PvcLocation | None = Field(
        None, description="Claim to write CSV files to, under <subPath>/<analysis name>/. Without it: a ConfigMap."
    )


class LoadGeneratorPlacement(StrEnum):
    """Where each point's load generator (perf_analyzer Job) runs."""

    SAME_NODE_AS_SERVER = "SameNodeAsServer"  # beside Triton, as Model Analyzer runs it: no network hop
    ANYWHERE = "Anywhere"  # where the scheduler puts it, within the user's nodeSelector/affinity


# CEL sees affinity (an open Kubernetes object) only as present or not, so `affinity: {}` counts as set here too.
PLACEMENT_CEL = (
    "(has(self.placement) && self.placement == 'Anywhere')"
    " || ((!has(self.nodeSelector) || size(self.nodeSelector) == 0) && !has(self.affinity))"
)
PLACEMENT_MESSAGE = (
    "loadGenerator.nodeSelector and affinity place the Jobs yourself: set placement: Anywhere with "
    "them (SameNodeAsServer pins every Job to the Triton pod's node)"
)


class LoadGeneratorSettings(WireModel):
    """Where each point's perf_analyzer Job runs, and with what."""

    placement: LoadGeneratorPlacement = Field(
        LoadGeneratorPlacement.SAME_NODE_AS_SERVER,
        description=(
            "SameNodeAsServer (default): every Job runs on the Triton pod's node, with the Triton pod's "
            "tolerations, so latency holds no network hop. Anywhere: the scheduler places each Job, within "
            "nodeSelector and affinity below; the numbers then include the network between the nodes."
        ),
    )
    resources: KubeObject = Field(
        default_factory=dict,
        max_length=8,
        description=(
            "Container resources of each Job (default: a CPU request of one core per 4 concurrent requests, "
            "1 to 4 cores, and 256Mi of memory)."
        ),
    )
    node_selector: dict[str, Annotated[str, Field(max_length=63)]] = Field(
        default_factory=dict, max_length=64, description="Node labels the Jobs must match (placement Anywhere only)."
    )
    affinity: KubeObject = Field(
        default_factory=dict, max_length=8, description="Affinity rules of the Jobs (placement Anywhere only)."
    )
    tolerations: list[KubeItem] = Field(
        default_factory=list,
        max_length=64,
        description="Tolerations added to the Jobs (to the Triton pod's, with SameNodeAsServer).",
    )

    @field_validator("resources")
    @classmethod
    def _resources_are_quantities(cls, resources: dict[str, Any]) -> dict[str, Any]:
        return _quantities(resources, "loadGenerator.resources")

    @model_validator(mode="after")
    def _placement_is_one_choice(self) -> LoadGeneratorSettings:
        places_jobs = bool(self.node_selector) or "affinity" in self.model_fields_set
        if self.placement == LoadGeneratorPlacement.SAME_NODE_AS_SERVER and places_jobs:
            raise ValueError(PLACEMENT_MESSAGE)
        return self


MAX_POINTS = 1000
MAX_PARALLEL_TRIALS = 64


class Parallelism(WireModel):
    """How many trials of this analysis run at once (core/trials.py), each on a Triton pod of its own."""

    max_trials: int = Field(
        1,
        ge=1,
        le=MAX_PARALLEL_TRIALS,
        description=(
            "Most Triton pods this analysis runs at once (within the operator's own cap on Triton pods). 1: each "
            "Triton version is one trial, its model variants loaded one after another; more: every (version, "
            "variant) is a trial of its own, so trials run side by side on as many GPU nodes as fit."
        ),
    )


MAX_MODELS_TOGETHER = 4


class ModelAnalysisSpec(SweepSpec):
    """What to profile (the models and points) and where (Triton pod, model repository, results)."""

    model_repository: ModelRepository = Field(description="Where the Triton pod finds the model repository.")
    triton: TritonSettings = Field(default_factory=TritonSettings)
    results: ResultsLocation = Field(default_factory=ResultsLocation)
    load_generator: LoadGeneratorSettings = Field(default_factory=LoadGeneratorSettings)
    parallelism: Parallelism = Field(default_factory=Parallelism)

    @model_validator(mode="after")
    def _inputs_the_job_can_send(self) -> ModelAnalysisSpec:
        for inputs in [self.inputs, *(m.inputs for m in self.models if m.inputs is not None)]:
            if inputs.data is not None and not re.fullmatch(r"random|zero", inputs.data):
                if inputs.data.startswith("/") or ".." in inputs.data.split("/") or has_control(inputs.data):
                    raise ValueError(INPUT_DATA_MESSAGE)
                if self.model_repository.pvc is None:
                    raise ValueError(INPUT_DATA_NEEDS_CLAIM)
            if inputs.shared_memory not in (None, SharedMemory.NONE):
                raise ValueError(SHARED_MEMORY_MESSAGE)
        return self

    @model_validator(mode="after")
    def _together_in_one_job(self) -> ModelAnalysisSpec:
        # One load-generator Job measures them all, and its result (each model's numbers) must fit in the 4 KB
        # termination message.
        if self.profile_models_concurrently and len(self.models) > MAX_MODELS_TOGETHER:
            raise ValueError(
                f"profileModelsConcurrently measures at most {MAX_MODELS_TOGETHER} models together in a cluster (one "
                "load-generator Job returns all their numbers): profile fewer, or the rest in another ModelAnalysis"
            )
        return self

    @model_validator(mode="after")
    def _status_fits(self) -> ModelAnalysisSpec:
        # Every point is kept in status, which must stay well under the API server's 1.5 MB object limit.
        versions = max(1, len(self.triton.compared_versions))
        variants = plan_variants(self)
        # Models measured together: each combination of their variants is a point per model (core/together.py).
        measured = len(combinations_together(variants)) * len(self.models) if self.profile_models_concurrently else 0
        points = versions * (measured or len(variants)) * len(self.batch_sizes) * len(self.load_steps)
        if points > MAX_POINTS:
            raise ValueError(
                f"Triton versions x models (with their config variants) x batchSizes x concurrency steps is {points} "
                f"points; split it into analyses of at most {MAX_POINTS}"
            )
        return self


# ---- status ------------------------------------------------------------------------------------------


class Phase(StrEnum):
    PENDING = "Pending"
    QUEUED = "Queued"
    STARTING = "Starting"
    PROFILING = "Profiling"
    WRITING_RESULTS = "WritingResults"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


FINISHED_PHASES = {Phase.SUCCEEDED, Phase.FAILED}


class ConditionType(StrEnum):
    """Condition types, each with what True means."""

    READY = "Ready"  # the analysis finished and its results are written
    SPEC_VALID = "SpecValid"  # the spec passed validation
    SERVER_READY = "ServerReady"  # the Triton pod is up and answering
    PROFILING = "Profiling"  # points are being measured


class Reason(StrEnum):
    """Every condition and Event reason the operator uses, grouped under the condition that carries it (as kueue
    groups its reasons). Ready=False takes the reason of whatever ended the run, from any group."""

    # SpecValid
    VALID = "Valid"
    INVALID_SPEC = "InvalidSpec"
    IMAGE_NOT_ALLOWED = "ImageNotAllowed"  # spec.triton.image is outside the operator's allowlist
    # ServerReady
    QUEUED = "Queued"
    POD_CREATED = "PodCreated"
    SERVER_READY = "ServerReady"
    UNSCHEDULABLE = "Unschedulable"
    CONTAINER_CONFIG = "ContainerConfigError"
    IMAGE_PULL_FAILED = "ImagePullFailed"
    SERVER_CRASHED = "ServerCrashed"
    SERVER_TIMEOUT = "ServerTimeout"
    SERVER_GONE = "ServerGone"
    # Profiling
    MEASURING = "Measuring"
    SWEEP_DONE = "SweepDone"
    # Ready
    SUCCEEDED = "Succeeded"
    NO_POINTS = "NoPointsMeasured"
    RESULTS_WRITE_FAILED = "ResultsWriteFailed"
    NAME_IN_USE = "NameInUse"  # a child's name is held by an object the analysis does not own (kube/ownership.py)
    # Events only
    STARTED = "Started"
    BASELINE_MEASURED = "BaselineMeasured"
    MODEL_LOADED = "ModelLoaded"
    MODEL_LOAD_FAILED = "ModelLoadFailed"
    MODEL_REFUSED = "ModelRefused"  # loaded, but its inputs do not fit what perf_analyzer is to send
    POINT_FAILED = "PointFailed"
    POINT_INTERRUPTED = "PointInterrupted"  # its load-generator pod was deleted mid-point: measured again
    POINT_NOT_CONVERGED = "PointNotConverged"
    MODEL_PROFILED = "ModelProfiled"
    EARLIER_RESULTS_KEPT = "EarlierResultsKept"  # the results folder held files of another analysis: moved beside
    RUN_ERROR = "RunError"  # the run raised something unexpected; the handlers retry it (kube/handlers.py)


def _whole_as_int(value: float) -> Any:
    return int(value) if float(value).is_integer() else value


# A load in status: a number (a structural schema allows one type), written 4 rather than 4.0 when whole.
LoadNumber = Annotated[
    float, PlainSerializer(_whole_as_int), WithJsonSchema({"type": "number"}, mode="serialization")
]


class CompactGpu(BaseModel):
    """One GPU's maxima over a point, in the short form kept in status."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    uuid: str
    util: float | None = Field(None, description="Max GPU utilization (%).")
    mem_mb: float | None = Field(None, alias="memMB", description="Max GPU memory used (MB).")
    power_w: float | None = Field(None, alias="powerW", description="Max GPU power (W).")
    mem_util: float | None = Field(None, alias="memUtil", description="Max memory utilization (%), from DCGM.")


class CompactStep(BaseModel):
    """One composing model of an ensemble over a point (core/pipeline.StepBreakdown), as kept in status."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    model: str
    requests: float
    executions: float
    queue_ms: float | None = Field(None, alias="queueMs", description="Average time a request waited (ms).")
    compute_input_ms: float | None = Field(None, alias="computeInputMs")
    compute_infer_ms: float | None = Field(None, alias="computeInferMs")
    compute_output_ms: float | None = Field(None, alias="computeOutputMs")
    request_ms: float | None = Field(None, alias="requestMs", description="Average time a request spent there.")
    bottleneck: bool | None = Field(None, description="The step its requests spend longest in.")


class CompactPoint(BaseModel):
    """One measured point, as kept in status: short keys, no Nones, so hundreds of points stay small."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    model: str
    variant: str | None = Field(None, description="The config variant measured (absent: the model's own config).")
    triton_version: str | None = Field(
        None, alias="tritonVersion", description="The Triton release it ran on (when spec.triton.versions is set)."
    )
    batch: int
    concurrency: int | None = Field(None, description="Closed-loop load: requests kept in flight.")
    request_rate: LoadNumber | None = Field(None, alias="requestRate", description="Open-loop load: requests/sec.")
    status: str
    error: str | None = None
    throughput: float | None = Field(None, description="perf_analyzer's throughput (infer/sec).")
    server_throughput: float | None = Field(None, alias="serverThroughput")
    p50: float | None = None
    p90: float | None = None
    p95: float | None = None
    p99: float | None = None
    avg: float | None = None
    cpu_util: float | None = Field(None, alias="cpuUtil")
    cpu_mem_mb: float | None = Field(None, alias="cpuMemMB")
    gpus: list[CompactGpu] | None = None
    throughput_ci: list[float] | None = Field(
        None, alias="throughputCI", description="95% confidence interval of throughput: [low, high]."
    )
    p99_ci: list[float] | None = Field(None, alias="p99CI", description="95% confidence interval of p99: [low, high].")
    windows: int | None = Field(None, description="Measurement windows the numbers rest on.")
    requests: int | None = Field(None, description="Requests timed over the point.")
    send_rate: float | None = Field(
        None, alias="sendRate", description="Open loop: the rate perf_analyzer sent at, where it fell behind."
    )
    delayed_pct: float | None = Field(
        None, alias="delayedPct", description="Open loop: the share of requests started late (%)."
    )
    ttft_avg: float | None = Field(None, alias="ttftAvg", description="Streaming: Time to first token, avg (ms).")
    ttft_p50: float | None = Field(None, alias="ttftP50", description="Streaming: Time to first token, p50 (ms).")
    ttft_p90: float | None = Field(None, alias="ttftP90", description="Streaming: Time to first token, p90 (ms).")
    ttft_p95: float | None = Field(None, alias="ttftP95", description="Streaming: Time to first token, p95 (ms).")
    ttft_p99: float | None = Field(None, alias="ttftP99", description="Streaming: Time to first token, p99 (ms).")
    itl_avg: float | None = Field(None, alias="itlAvg", description="Streaming: Inter-token latency, avg (ms).")
    itl_p50: float | None = Field(None, alias="itlP50", description="Streaming: Inter-token latency, p50 (ms).")
    itl_p90: float | None = Field(None, alias="itlP90", description="Streaming: Inter-token latency, p90 (ms).")
    itl_p95: float | None = Field(None, alias="itlP95", description="Streaming: Inter-token latency, p95 (ms).")
    itl_p99: float | None = Field(None, alias="itlP99", description="Streaming: Inter-token latency, p99 (ms).")
    ttft_ci: list[float] | None = Field(None, alias="ttftP99CI", description="Streaming: p99 TTFT's 95% interval.")
    itl_ci: list[float] | None = Field(None, alias="itlP99CI", description="Streaming: p99 ITL's 95% interval.")
    tokens_per_sec: float | None = Field(None, alias="tokensPerSec", description="Streaming: output tokens/sec.")
    tokens_ci: list[float] | None = Field(
        None, alias="tokensPerSecCI", description="Streaming: output tokens/sec's 95% interval."
    )
    tokens_per_request: float | None = Field(None, alias="tokensPerRequest", description="Streaming: tokens/request.")
    converged: bool | None = Field(None, description="Whether throughput reached the precision asked for.")
    convergence: str | None = Field(None, description="Why measuring the point stopped.")
    server_node: str | None = Field(None, alias="serverNode", description="Node the Triton pod ran on.")
    load_generator_node: str | None = Field(
        None, alias="loadGeneratorNode", description="Node the point's perf_analyzer Job ran on."
    )
    load_generator_cpu: float | None = Field(
        None, alias="loadGeneratorCPU", description="Cores perf_analyzer used on average while it ran."
    )
    load_generator_cpu_budget: float | None = Field(
        None, alias="loadGeneratorCPUBudget", description="Cores the Job was given (its CPU limit, else request)."
    )
    load_generator_bottleneck: bool | None = Field(
        None, alias="loadGeneratorBottleneck", description="perf_analyzer used more than 80% of its budget."
    )
    steps: list[CompactStep] | None = Field(
        None, description="An ensemble's point: each composing model's share, from Triton's counters."
    )
    measured_with: list[str] | None = Field(
        None, alias="measuredWith", description="The models measured at the same time (profileModelsConcurrently)."
    )
    rechecked: bool | None = Field(
        None, description="An edge of a search's boundary, measured twice: its intervals cover both readings."
    )
    started: float | None = None
    finished: float | None = None

    @property
    def key(self) -> str:
        return point_key(
            self.variant or self.model, self.batch, Load.of(self), self.triton_version or "", self.measured_with
        )


class CompactBaseline(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    cpu_util: float | None = Field(None, alias="cpuUtil")
    cpu_mem_mb: float | None = Field(None, alias="cpuMemMB")
    gpus: list[CompactGpu] | None = None


class SkippedPointStatus(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    batch: int
    concurrency: int | None = None
    request_rate: LoadNumber | None = Field(None, alias="requestRate")
    reason: str


class ComposingSettingStatus(BaseModel):
    """What a pipeline's variant sets for one of its composing models (absent fields: the model's own)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    model: str
    instance_count: int | None = Field(None, alias="instanceCount")
    max_batch_size: int | None = Field(None, alias="maxBatchSize")
    dynamic_batching: bool | None = Field(None, alias="dynamicBatching")


class ModelStatusEntry(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    name: str = Field(description="The model, or its config variant (<model>_config_<n>).")
    model: str | None = Field(None, description="The model a config variant is of.")
    changes: str | None = Field(None, description="What the variant changes in the model's config.")
    triton_version: str | None = Field(None, alias="tritonVersion", description="The Triton release it was loaded in.")
    status: str
    error: str | None = None
    max_batch_size: int | None = Field(None, alias="maxBatchSize")
    instance_group: str | None = Field(None, alias="instanceGroup")
    skipped: list[SkippedPointStatus] | None = None
    inputs: str | None = Field(None, description="What perf_analyzer sent it, as its flags (absent: made-up data).")
    composing: list[ComposingSettingStatus] | None = Field(
        None, description="A pipeline's variant: each composing model's setting, in step order (README: Pipelines)."
    )
    reason: str | None = Field(None, description="Why the composing-model search measured it, or ended before it.")


class Condition(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    type: str
    status: str
    reason: str
    message: str = ""
    last_transition_time: str = Field(alias="lastTransitionTime")
    observed_generation: int | None = Field(None, alias="observedGeneration")


class BestStatus(BaseModel):
    """The point to deploy (core/objectives.py): the best within the constraints, or the closest when none is."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    model: str
    variant: str | None = Field(None, description="The config variant it was measured in (<model>_config_<n>).")
    variant_changes: str | None = Field(
        None, alias="variantChanges", description="What that variant changes in the model's config."
    )
    triton_version: str | None = Field(
        None, alias="tritonVersion", description="The Triton release it ran on (when spec.triton.versions is set)."
    )
    batch: int
    concurrency: int | None = Field(None, description="Closed-loop load: requests kept in flight.")
    request_rate: LoadNumber | None = Field(None, alias="requestRate", description="Open-loop load: requests/sec.")
    throughput: float = Field(description="Throughput (infer/sec).")
    throughput_ci: list[float] | None = Field(
        None, alias="throughputCI", description="95% confidence interval of throughput: [low, high]."
    )
    p99: float = Field(description="p99 latency (ms).")
    gpu_mem_mb: float | None = Field(None, alias="gpuMemMB", description="Max GPU memory used (MB), where measured.")
    config: KubeObject | None = Field(
        None,
        description="The whole model config of the variant it won in, as loaded (Triton's JSON form): what to deploy "
        "(`model-analyzer results NAME --output-model-repository DIR` writes it as DIR/<model>/config.pbtxt).",
    )
    composing_configs: dict[str, KubeObject] | None = Field(
        None,
        alias="composingConfigs",
        description="A pipeline's winner: each composing model's whole config as the winning variant loaded it, by "
        "model name (`--output-model-repository` writes each beside the pipeline's).",
    )
    satisfies_constraints: bool = Field(alias="satisfiesConstraints")
    why: str = Field(description="Why this point was chosen.")
    summary: str = Field(description="One line: the point and what it gives (kubectl get's Best column).")
    probably_within: str | None = Field(
        None,
        alias="probablyWithin",
        description="A point ranking higher (or this one, when none is surely within) that is only probably within "
        "the constraints: a 95% interval straddles a bound. Never chosen.",
    )


class BoundaryStatus(BaseModel):
    """Where the load a variant holds ends at one batch size (core/budget.py): under the p99 budget and, for a
    request rate, delivered."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    model: str
    variant: str | None = None
    triton_version: str | None = Field(None, alias="tritonVersion")
    batch: int
    request_rate: bool | None = Field(
        None, alias="requestRate", description="The loads are request rates (req/sec); absent: concurrencies."
    )
    surely_under: LoadNumber | None = Field(
        None, alias="surelyUnder", description="The highest load that surely holds: the one to deploy."
    )
    surely_over: LoadNumber | None = Field(None, alias="surelyOver", description="The lowest that surely does not.")
    undecided: list[LoadNumber] | None = Field(None, description="Loads between, whose 95% intervals straddle it.")
    summary: str = Field(description="The same in one sentence.")


class TogetherStatus(BaseModel):
    """Models measured together (spec.profileModelsConcurrently): the combination that does best together."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    batch: int
    concurrency: int | None = None
    request_rate: LoadNumber | None = Field(None, alias="requestRate")
    variants: list[str] | None = Field(None, description="With a config search: one variant of each model.")
    members: list[str] = Field(description="Each member's point (its key, as in status.points).")
    satisfies_constraints: bool = Field(alias="satisfiesConstraints")
    summary: str = Field(description="Where, and why, in one sentence.")
    configs: dict[str, KubeObject] | None = Field(
        None, description="With a config search: each model's whole config in the combination, as loaded (what "
        "`model-analyzer results NAME --output-model-repository DIR` writes).",
    )


class TrialStatus(BaseModel):
    """One trial (core/trials.py): a Triton version and the variants measured on one Triton pod."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    name: str = Field(description="The variant and/or Triton version it measures.")
    triton_version: str | None = Field(None, alias="tritonVersion")
    variants: list[str] = Field(default_factory=list, description="The model variants it loads, in turn.")
    phase: str = Field(Phase.PENDING.value, description="Pending, Queued, Starting, Profiling, Succeeded or Failed.")
    reason: str | None = Field(None, description="Why it failed (a Reason), when it did.")
    message: str | None = None
    pod: str | None = Field(None, description="Its Triton pod.")
    node: str | None = Field(None, description="The node its Triton pod ran on.")
    points_done: int = Field(0, alias="pointsDone")
    points_total: int = Field(0, alias="pointsTotal")
    started_at: str | None = Field(None, alias="startedAt")
    finished_at: str | None = Field(None, alias="finishedAt")
    baseline: CompactBaseline | None = Field(None, description="Its server with no model loaded.")


class ModelAnalysisStatus(BaseModel):
    """Everything the operator knows about an analysis. Progress lives here, so a restarted operator
    resumes where it was: points already in `points` are never measured again."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    phase: str = Phase.PENDING.value
    observed_generation: int | None = Field(None, alias="observedGeneration")
    message: str | None = None
    progress: str | None = Field(None, description="Points done / points planned.")
    points_done: int = Field(0, alias="pointsDone")
    points_total: int = Field(0, alias="pointsTotal")
    best_throughput: float | None = Field(None, alias="bestThroughput")
    best: BestStatus | None = Field(None, description="The point to deploy, by spec.objective within spec.constraints.")
    best_per_model: list[BestStatus] | None = Field(
        None, alias="bestPerModel", description="The best point of each model."
    )
    best_per_version: list[BestStatus] | None = Field(
        None, alias="bestPerVersion", description="The best point of each Triton version (spec.triton.versions)."
    )
    best_together: TogetherStatus | None = Field(
        None, alias="bestTogether", description="Models measured together: their best combination (or closest)."
    )
    boundaries: list[BoundaryStatus] | None = Field(
        None, description="With a p99 budget: at each batch size of each variant, the load surely under it, the one "
        "surely over it and the undecided ones between (a concurrency search's answer)."
    )
    model_configs: dict[str, KubeObject] | None = Field(
        None,
        alias="modelConfigs",
        description="Each searched model's own config as Triton read it: every variant's config is built from it.",
    )
    trials: list[TrialStatus] | None = Field(
        None, description="Each trial's state and progress, when the analysis runs more than one (core/trials.py)."
    )
    triton_pod: str | None = Field(None, alias="tritonPod")
    triton_image: str | None = Field(None, alias="tritonImage")
    load_generator_placement: str | None = Field(
        None,
        alias="loadGeneratorPlacement",
        description="How the load-generator Jobs were placed (spec.loadGenerator).",
    )
    server_version: str | None = Field(None, alias="serverVersion")
    started_at: str | None = Field(None, alias="startedAt")
    finished_at: str | None = Field(None, alias="finishedAt")
    results: str | None = Field(None, description="Where the CSV files are: configmap/NAME or pvc://CLAIM/PATH.")
    notes: list[str] | None = None
    baseline: CompactBaseline | None = None
    models: list[ModelStatusEntry] | None = None
    points: list[CompactPoint] | None = None
    conditions: list[Condition] | None = None

    def wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

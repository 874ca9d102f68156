"""Operator configuration, from MODELANALYSIS_* environment variables (the chart sets them)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from modelanalysis import __version__
from modelanalysis.core.spec import DEFAULT_TRITON_VERSION

DEFAULT_IMAGE = f"ghcr.io/modelanalysis/modelanalysis:{__version__}"


class OperatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MODELANALYSIS_")

    load_generator_image: str = Field(DEFAULT_IMAGE, description="Image of the perf_analyzer Jobs.")
    max_triton_pods: int = Field(4, ge=1, description="Triton pods run at once; further analyses queue.")
    max_triton_pods_per_namespace: int | None = Field(
        None, ge=1, description="Triton pods one namespace may hold at once (None: up to max_triton_pods)."
    )
    # The namespaces kopf watches (the chart's watchNamespaces; a JSON list): where the Triton pods that hold slots
    # are looked for. Empty: every namespace (--all-namespaces).
    watch_namespaces: list[str] = Field(default_factory=list, description="Namespaces watched (empty: all).")
    max_analyses: int = Field(
        1000, ge=1, description="Analyses handled at once (one thread each); beyond it, they wait for a thread."
    )
    triton_image_repository: str = "nvcr.io/nvidia/tritonserver"
    # Who may choose which image runs: spec.triton.image must come from triton_image_repository or from one of
    # these (a JSON list in the environment; `registry/path/*` allows everything under that path, `*` anything).
    triton_allowed_image_repositories: list[str] = Field(
        default_factory=list,
        description="Image repositories a ModelAnalysis may run Triton from, besides triton_image_repository.",
    )
    # Triton pod hardening that the NGC image does not allow by default (it runs as root): opt-in.
    triton_run_as_user: int | None = Field(
        None, ge=1, description="Run Triton pods as this non-root user ID (runAsNonRoot); None: the image's user."
    )
    triton_read_only_root_filesystem: bool = Field(
        False, description="Give Triton containers a read-only root filesystem (with an emptyDir at /tmp)."
    )
    default_triton_version: str = DEFAULT_TRITON_VERSION
    triton_ready_timeout_seconds: int = Field(600, ge=10)
    prometheus_url: str | None = Field(
        None, description="Prometheus scraping dcgm-exporter, for Max Memory Utilization (empty without it)."
    )
    # How long finished point Jobs are kept if the operator could not delete them (a backstop).
    job_ttl_seconds: int = 3600
    metrics_port: int | None = Field(
        None, ge=1, le=65535, description="Serve the operator's own metrics for Prometheus on this port."
    )
    log_level: str = Field("info", pattern="^(debug|info|warning|error)$", description="Operator log level.")
    poll_interval_seconds: float = Field(0.25, gt=0, description="How often a running step is re-observed.")
    # Several replicas (the chart's replicaCount > 1): the one holding the Lease acts (kube/leader.py).
    leader_election: bool = Field(False, description="Act only while holding the leader Lease.")
    lease_name: str = "model-analyzer-leader"
    lease_duration_seconds: float = Field(15.0, ge=3)
    pod_namespace: str = Field("default", validation_alias="POD_NAMESPACE", description="Where the Lease lives.")
    pod_name: str = Field("", validation_alias="POD_NAME", description="This replica's name in the Lease.")
    pod_ip: str = Field("", validation_alias="POD_IP", description="Where the metrics endpoint listens (all: unset).")

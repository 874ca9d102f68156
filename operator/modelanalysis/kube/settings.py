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
    max_analyses: int = Field(
        1000, ge=1, description="Analyses handled at once (one thread each); beyond it, they wait for a thread."
    )
    triton_image_repository: str = "nvcr.io/nvidia/tritonserver"
    default_triton_version: str = DEFAULT_TRITON_VERSION
    triton_ready_timeout_seconds: int = Field(600, ge=10)
    prometheus_url: str | None = Field(
        None, description="Prometheus scraping dcgm-exporter, for Max Memory Utilization (empty without it)."
    )
    # How long finished point Jobs are kept if the operator could not delete them (a backstop).
    job_ttl_seconds: int = 3600
    log_level: str = Field("info", pattern="^(debug|info|warning|error)$", description="Operator log level.")
    poll_interval_seconds: float = Field(0.25, gt=0, description="How often a running step is re-observed.")

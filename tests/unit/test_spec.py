"""SweepSpec and MeasurementSettings: defaults, ordering, validation, and the camelCase wire form."""

from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError

from modelanalysis.core.spec import (
    MAX_BATCH_SIZE,
    MAX_CONCURRENCY,
    MeasurementSettings,
    ModelTarget,
    Protocol,
    SweepSpec,
)


def spec(**kwargs: object) -> SweepSpec:
    return SweepSpec.model_validate({"models": [{"name": "add_sub"}], **kwargs})


def test_defaults_measure_batch_1_concurrency_1_over_grpc() -> None:
    s = spec()
    assert s.batch_sizes == [1]
    assert s.concurrency_steps == [1]
    assert s.measurement.protocol == Protocol.GRPC
    assert s.measurement.measurement_interval_ms == 250
    assert s.measurement.max_windows == 30
    assert s.measurement.convergence_pct == 10.0


def test_batch_sizes_and_concurrency_are_sorted_and_deduplicated() -> None:
    s = spec(batch_sizes=[8, 1, 4, 4, 1], concurrency=[4, 2, 2, 1])
    assert s.batch_sizes == [1, 4, 8]
    assert s.concurrency == [1, 2, 4]


@pytest.mark.parametrize("field", ["batch_sizes", "concurrency"])
@pytest.mark.parametrize("bad", [[0], [-1], [1, 0], []])
def test_non_positive_or_empty_lists_are_refused(field: str, bad: list[int]) -> None:
    with pytest.raises(ValidationError):
        spec(**{field: bad})


def test_more_than_64_values_are_refused() -> None:
    with pytest.raises(ValidationError):
        spec(batch_sizes=list(range(1, 66)))


def test_at_least_one_model() -> None:
    with pytest.raises(ValidationError):
        SweepSpec(models=[])


def test_a_model_listed_twice_is_refused_with_its_name() -> None:
    with pytest.raises(ValidationError, match="'add_sub' is listed more than once"):
        SweepSpec(models=[ModelTarget(name="add_sub"), ModelTarget(name="matmul"), ModelTarget(name="add_sub")])


@pytest.mark.parametrize("name", ["", "a/b", "has space", "tab\there"])
def test_model_names_that_cannot_be_a_repository_folder_are_refused(name: str) -> None:
    with pytest.raises(ValidationError):
        ModelTarget(name=name)


def test_model_names_keep_their_order() -> None:
    s = SweepSpec(models=[ModelTarget(name="matmul"), ModelTarget(name="add_sub")])
    assert s.model_names == ["matmul", "add_sub"]


def test_wire_form_is_camel_case_and_snake_case_is_accepted_too() -> None:
    wire = {
        "models": [{"name": "add_sub"}],
        "batchSizes": [4, 1],
        "concurrency": [2],
        "measurement": {"protocol": "http", "measurementIntervalMs": 300, "stabilityPercentage": 50, "maxWindows": 5},
    }
    s = SweepSpec.model_validate(wire)
    assert s.batch_sizes == [1, 4]
    assert s.measurement.protocol == Protocol.HTTP
    assert s.measurement.measurement_interval_ms == 300
    dumped = s.model_dump(by_alias=True, mode="json")
    assert dumped["batchSizes"] == [1, 4]
    assert dumped["measurement"]["measurementIntervalMs"] == 300
    assert dumped["measurement"]["baselineDurationMs"] == 1000
    assert SweepSpec.model_validate(dumped) == s
    assert spec(batch_sizes=[2]).batch_sizes == [2]


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError, match="batchSize"):
        SweepSpec.model_validate({"models": [{"name": "a"}], "batchSize": [1]})
    with pytest.raises(ValidationError):
        MeasurementSettings.model_validate({"intervalMs": 100})


@pytest.mark.parametrize(
    ("field", "value", "ok"),
    [
        ("measurement_interval_ms", 100, True),
        ("measurement_interval_ms", 99, False),
        ("stability_percentage", 100, True),
        ("stability_percentage", 0, False),
        ("stability_percentage", 100.5, False),
        ("max_windows", 1, True),
        ("max_windows", 0, False),
        ("point_timeout_seconds", 9, False),
        ("metrics_interval_ms", 100, True),
        ("metrics_interval_ms", 50, False),
        ("baseline_duration_ms", 0, True),
        ("baseline_duration_ms", -1, False),
    ],
)
def test_measurement_bounds(field: str, value: float, ok: bool) -> None:
    if ok:
        assert getattr(MeasurementSettings.model_validate({field: value}), field) == value
    else:
        with pytest.raises(ValidationError):
            MeasurementSettings.model_validate({field: value})


def test_unknown_protocol_is_refused() -> None:
    with pytest.raises(ValidationError):
        MeasurementSettings.model_validate({"protocol": "websocket"})


def test_triton_url_derives_grpc_and_metrics_unless_given() -> None:
    from modelanalysis.adapters.triton_server import TritonEndpoints

    derived = TritonEndpoints.from_url("triton.local:8000")
    assert (derived.grpc, derived.metrics_url) == ("triton.local:8001", "http://triton.local:8002/metrics")
    given = TritonEndpoints.from_url("http://triton.local:8000/", "http://m:9/metrics", "grpc.local:9001")
    assert (given.http, given.grpc, given.metrics_url) == ("triton.local:8000", "grpc.local:9001", "http://m:9/metrics")
    with pytest.raises(ValueError, match="host:port"):
        TritonEndpoints.from_url("no-port")


def test_manifest_takes_the_same_measurement_flags_as_profile() -> None:
    from typer.testing import CliRunner

    from modelanalysis.cli import app

    args = ["manifest", "--name", "a", "--model-repository", "pvc://m/sub", "--model-names", "x"]
    out = CliRunner().invoke(app, [*args, "--metrics-interval", "250", "--baseline-duration", "0"])
    assert out.exit_code == 0, out.output
    assert "metricsIntervalMs: 250" in out.output and "baselineDurationMs: 0" in out.output
    refused = CliRunner().invoke(app, [*args, "--metrics-interval", "5"])
    assert refused.exit_code == 1 and "--metrics-interval:" in refused.output and "Traceback" not in refused.output


def test_one_version_everywhere() -> None:
    """The package, its installed metadata (pyproject reads it from the package) and the chart agree."""
    from importlib.metadata import version
    from pathlib import Path

    import yaml

    from modelanalysis import __version__

    chart = yaml.safe_load((Path(__file__).resolve().parents[2] / "charts/model-analyzer/Chart.yaml").read_text())
    assert version("modelanalysis") == __version__ == chart["appVersion"]


@pytest.mark.parametrize(("field", "bound"), [("batch_sizes", MAX_BATCH_SIZE), ("concurrency", MAX_CONCURRENCY)])
def test_batch_and_concurrency_have_an_upper_bound_named_in_the_message(field: str, bound: int) -> None:
    models = [ModelTarget(name="m")]
    assert getattr(SweepSpec(models=models, **{field: [bound]}), field) == [bound]
    for too_many in (bound + 1, 1_000_000_000, 1_099_511_627_776):
        with pytest.raises(ValidationError) as refused:
            SweepSpec(models=models, **{field: [1, too_many]})
        assert f"less than or equal to {bound}" in str(refused.value)


def test_manifest_takes_the_same_objective_and_constraint_flags_as_profile() -> None:
    from typer.testing import CliRunner

    from modelanalysis.cli import app

    args = ["manifest", "--name", "a", "--model-repository", "pvc://m", "--model-names", "x"]
    out = CliRunner().invoke(app, [*args, "--objective", "minimize-latency", "--latency-budget", "20",
                                   "--max-gpu-memory", "16000"])  # fmt: skip
    assert out.exit_code == 0, out.output
    body = yaml.safe_load(out.output)
    assert body["spec"]["objective"] == "minimize-latency"
    assert body["spec"]["constraints"] == {"p99LatencyMs": {"max": 20.0}, "gpuMemoryMB": {"max": 16000.0}}
    plain = yaml.safe_load(CliRunner().invoke(app, args).output)
    assert "objective" not in plain["spec"] and "constraints" not in plain["spec"]  # defaults stay out
    for command in (args, ["profile", "--triton-url", "127.0.0.1:1", "-m", "x"]):
        refused = CliRunner().invoke(app, [*command, "--latency-budget", "-3"])
        assert refused.exit_code == 1 and "--latency-budget:" in refused.output, refused.output


def test_the_old_name_of_max_windows_is_still_accepted_for_one_release() -> None:
    """v1alpha1 called a point's measurement windows "trials"; a trial is now what one Triton server measures."""
    old = MeasurementSettings.model_validate({"maxTrials": 7})
    assert old.max_windows == 7
    both = MeasurementSettings.model_validate({"maxTrials": 7, "maxWindows": 9})
    assert both.max_windows == 9  # the new name wins
    assert MeasurementSettings().max_windows == 30 and MeasurementSettings().max_trials is None

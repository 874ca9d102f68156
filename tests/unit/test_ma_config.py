"""Model Analyzer's profile YAML read as this tool's flags (core/ma_config.py). The documents are in the shapes
Model Analyzer 1.58's docs/config.md gives them: list and mapping profile_models, ranges, per-model
parameters, model_config_parameters sweeps, perf_analyzer_flags with shapes and input data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from modelanalysis.core.ma_config import MaConfigError, number_list, read_ma_config


def flags(document: dict[str, Any]) -> dict[str, str]:
    """The flags as a mapping (the last value of a repeated flag; shapes joined)."""
    argv = read_ma_config(document).argv
    found: dict[str, str] = {}
    i = 0
    while i < len(argv):
        flag = argv[i]
        if flag == "--export":
            found[flag], i = "", i + 1
            continue
        value = argv[i + 1]
        found[flag] = f"{found[flag]} {value}" if flag == "--shape" and flag in found else value
        i += 2
    return found


@pytest.mark.parametrize(
    ("value", "expected"),
    [(4, [4]), ("1,2,4", [1, 2, 4]), ([2, 4, 8], [2, 4, 8]), ({"start": 4, "stop": 9}, [4, 5, 6, 7, 8, 9]),
     ({"start": 2, "stop": 64, "step": 8}, [2, 10, 18, 26, 34, 42, 50, 58])],
)
def test_model_analyzers_list_forms(value: Any, expected: list[int]) -> None:
    assert number_list(value, "concurrency") == expected


def test_the_global_example_maps_to_flags() -> None:
    document = yaml.safe_load("""
model_repository: /path/to/model-repository
profile_models:
  - model_1
  - model_2
batch_sizes:
  start: 4
  stop: 9
concurrency:
  - 2
  - 4
  - 8
constraints:
  gpu_used_memory:
    max: 200
  perf_latency_p99:
    max: 100
objectives:
  - perf_latency_p99
export_path: /results
client_protocol: http
""")
    assert flags(document) == {
        "--model-folder": "/path/to/model-repository", "--export-path": "/results", "--export": "",
        "--protocol": "http", "--model-names": "model_1,model_2", "--batch": "4,5,6,7,8,9",
        "--concurrency": "2,4,8", "--objective": "minimize-latency", "--max-gpu-memory": "200",
        "--latency-budget": "100",
    }  # fmt: skip


def test_a_per_model_block_gives_its_parameters_sweep_and_shapes() -> None:
    document = yaml.safe_load("""
model_repository: /models
run_config_search_disable: true
profile_models:
  text_encoder:
    parameters:
      concurrency:
        start: 2
        stop: 64
        step: 8
      batch_sizes: 1,2,3
    perf_analyzer_flags:
      shape:
        - INPUT_IDS:128
      input-data: /data/requests.json
    model_config_parameters:
      max_batch_size: [8, 16]
      dynamic_batching: {}
      instance_group:
        - - kind: KIND_GPU
            count: 1
        - - kind: KIND_GPU
            count: 2
perf_analyzer_flags:
  percentile: 99
  measurement-interval: 500
""")
    config = read_ma_config(document)
    found = flags(document)
    assert found["--concurrency"] == "2,10,18,26,34,42,50,58" and found["--batch"] == "1,2,3"
    assert found["--shape"] == "text_encoder/INPUT_IDS:128" and found["--measurement-interval"] == "500"
    assert config.models == {"text_encoder": {
        "configSearch": {"maxBatchSizes": [8, 16], "dynamicBatching": [True], "instanceCounts": [1, 2]},
        "inputs": {"data": "/data/requests.json"},
    }}  # fmt: skip
    assert any("instance_group kind KIND_GPU: the model's own kind is kept" in n for n in config.notes)


def test_searches_map_onto_ours() -> None:
    auto = flags({"profile_models": "m", "run_config_search_max_concurrency": 64, "latency_budget": 20})
    assert auto["--concurrency"] == "auto" and auto["--max-concurrency"] == "64" and auto["--latency-budget"] == "20"
    rates = flags({"profile_models": "m", "request_rate_search_enable": True,
                   "run_config_search_max_request_rate": 512})  # fmt: skip
    assert rates["--request-rate"] == "auto" and rates["--max-request-rate"] == "512"
    assert flags({"profile_models": "m", "request_rate": "100,200"})["--request-rate"] == "100,200"
    bounds = read_ma_config({"profile_models": ["m"], "run_config_search_max_instance_count": 3,
                             "run_config_search_max_model_batch_size": 16})  # fmt: skip
    assert bounds.models == {"m": {"configSearch": {"instanceCounts": [1, 2, 3], "maxBatchSizes": [1, 2, 4, 8, 16]}}}


def test_remote_mode_profiles_the_running_server() -> None:
    remote = flags({"profile_models": "m", "triton_launch_mode": "remote", "triton_http_endpoint": "h:8000",
                    "triton_grpc_endpoint": "h:8001"})  # fmt: skip
    assert remote["--triton-url"] == "h:8000" and remote["--triton-grpc-url"] == "h:8001"


def test_docker_mode_takes_model_analyzers_container_keys() -> None:
    pairs = flags({"profile_models": "m", "triton_launch_mode": "docker", "triton_docker_image": "t:24.10",
                   "triton_docker_shm_size": "2g", "triton_docker_mounts": ["/a:/a:ro", "/b:/c"],
                   "triton_docker_labels": {"team": "vision", "tier": "dev"}, "gpus": ["0", "1"]})  # fmt: skip
    assert pairs["--triton-launch-mode"] == "docker" and pairs["--triton-docker-image"] == "t:24.10"
    assert pairs["--triton-docker-shm-size"] == "2g" and pairs["--triton-docker-mounts"] == "/a:/a:ro,/b:/c"
    assert pairs["--triton-docker-labels"] == "team=vision,tier=dev" and pairs["--triton-gpus"] == "0,1"


@pytest.mark.parametrize(
    ("document", "sentence"),
    [
        ({"profile_models": "m", "batch_size": 4}, "batch_size is not a Model Analyzer key this tool knows; did you "
         "mean batch_sizes?"),
        ({"profile_models": "m", "triton_launch_mode": "c_api"}, "c_api is not supported"),
        ({"profile_models": "m", "triton_docker_image": "x:1"}, "triton_docker_image shape the Triton container of "
         "triton_launch_mode docker"),
        ({"profile_models": "m", "triton_launch_mode": "docker", "triton_docker_labels": ["a"]},
         "triton_docker_labels is a mapping"),
        ({"profile_models": "m", "triton_server_flags": {"log_verbose": 1}}, "triton_server_flags is not supported"),
        ({"profile_models": "m", "objectives": {"perf_throughput": 2, "perf_latency_p99": 3}},
         "weighted objectives are not supported"),
        ({"profile_models": "m", "objectives": ["gpu_used_memory"]}, "objectives gpu_used_memory is not supported"),
        ({"profile_models": "m", "perf_analyzer_flags": {"latency-report-file": "/x"}},
         "perf_analyzer_flags latency-report-file is not passed on"),
        ({"profile_models": "m", "perf_analyzer_flags": {"percentile": 95}}, "judges p99"),
        ({"profile_models": {"m": {"model_config_parameters": {"dynamic_batching": {
            "max_queue_delay_microseconds": [100, 200]}}}}}, "only on ({}) is supported"),
        ({"profile_models": {"a": {"parameters": {"batch_sizes": 1}}, "b": {"parameters": {"batch_sizes": 4}}}},
         "profile_models give different parameters batch_sizes (a, b)"),
        ({"profile_models": {"m": {"cpu_only": True}}}, "cpu_only is not supported"),
        ({"profile_models": {"m": {"paramters": {}}}}, "did you mean parameters?"),
        ({"profile_models": "m", "concurrency": [1], "request_rate": [5]}, "both given"),
        ({"profile_models": "m", "constraints": {"perf_latency_p99": {"min": 3}}}, "takes max: <number>"),
        ({"profile_models": "m", "perf_analyzer_flags": {"shape": "INPUT_IDS"}}, "is not NAME:D1"),
    ],
)
def test_what_cannot_be_honoured_is_refused_in_one_sentence_naming_the_key(document: Any, sentence: str) -> None:
    with pytest.raises(MaConfigError) as refused:
        read_ma_config(document)
    assert sentence in str(refused.value)


def test_keys_that_only_shape_model_analyzers_own_outputs_are_accepted_and_said_to_have_no_effect() -> None:
    config = read_ma_config({"profile_models": "m", "override_output_model_repository": True,
                             "output_model_repository_path": "/out", "checkpoint_directory": "/ckpt"})  # fmt: skip
    assert len(config.notes) == 3 and all("has no effect here" in n for n in config.notes)


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "model-analyzer" / "profile.yaml"


def test_manifest_from_the_example_file_is_a_valid_analysis_with_each_models_own_settings(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from typer.testing import CliRunner

    from modelanalysis.cli import app, with_config_file
    from modelanalysis.kube.resource import ModelAnalysisSpec

    argv = with_config_file(["manifest", "-f", str(EXAMPLE), "--name", "a", "--model-repository", "pvc://models"])
    noted = capsys.readouterr().err
    assert "model_repository examples/models is a local folder" in noted
    assert "export-path results has no effect in a manifest" in noted
    out = CliRunner().invoke(app, argv)
    assert out.exit_code == 0, out.output
    spec = yaml.safe_load(out.output)["spec"]
    ModelAnalysisSpec.model_validate(spec)  # the API server's rules are the same models
    models = {m["name"]: m for m in spec["models"]}
    assert models["text_encoder"] == {"name": "text_encoder", "configSearch": {"instanceCounts": [1, 2]},
                                      "inputs": {"shapes": ["INPUT_IDS:64"]}}  # fmt: skip
    assert models["add_sub"] == {"name": "add_sub", "configSearch": {"dynamicBatching": [True]}}
    assert spec["batchSizes"] == [1, 4] and spec["concurrency"] == [1, 4]
    assert spec["constraints"] == {"p99LatencyMs": {"max": 50.0}}


def test_a_request_rate_search_file_makes_a_rate_search_manifest() -> None:
    from typer.testing import CliRunner

    from modelanalysis.cli import app

    argv = ["manifest", "--name", "a", "--model-repository", "pvc://m", "-m", "x", "--request-rate", "auto",
            "--max-request-rate", "1024"]  # fmt: skip
    out = CliRunner().invoke(app, argv)
    assert out.exit_code == 0, out.output
    spec = yaml.safe_load(out.output)["spec"]
    assert spec["requestRateSearch"] == {"minRate": 16.0, "maxRate": 1024.0} and "concurrency" not in spec

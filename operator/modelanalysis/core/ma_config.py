"""NVIDIA Model Analyzer's profile YAML (`model-analyzer profile -f config.yaml`), read as this tool's flags.

A team's existing file keeps working: each key it uses that this tool also does becomes the flag it stands for,
placed before the command line's own flags, so that a flag given on the command line overrides the file (as in
Model Analyzer). What a flag cannot say, one model's own config search and inputs, travels as `models`, a
ModelTarget per model. Every key this tool does not support is refused up front with one sentence naming it
(and what to use instead, where there is something); an unknown key, a typo, is refused the same way, with the
nearest known key. A few keys that only shape Model Analyzer's own outputs are accepted and said to have no
effect (`notes`), never dropped in silence.

Pure: a parsed YAML document in, flags and per-model settings out; the CLI reads the file and runs them.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from modelanalysis.core.inputs import parse_shape


class MaConfigError(ValueError):
    """The file holds a key or value this tool cannot honour; the message is the one sentence to show."""


@dataclass
class MaProfileConfig:
    """The file as this tool's flags (`argv`, ahead of the command line's own), each model's own settings
    (spec ModelTarget fields on the wire: configSearch, inputs), and what was accepted to no effect."""

    argv: list[str] = field(default_factory=list)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# Top-level keys and the flag each stands for (a value flag), for those that map one to one.
VALUE_FLAGS = {
    "model_repository": "--model-folder",
    "export_path": "--export-path",
    "client_protocol": "--protocol",
    "triton_http_endpoint": "--triton-url",
    "triton_grpc_endpoint": "--triton-grpc-url",
    "triton_metrics_url": "--triton-metrics-url",
    "triton_server_path": "--triton-server-path",
    "perf_analyzer_path": "--perf-analyzer-path",
    "perf_analyzer_timeout": "--point-timeout",
    "latency_budget": "--latency-budget",
    "min_throughput": "--min-throughput",
    "run_config_search_max_concurrency": "--max-concurrency",
    "run_config_search_min_request_rate": "--min-request-rate",
    "run_config_search_max_request_rate": "--max-request-rate",
    "bls_composing_models": "--bls-composing-models",
    "triton_docker_image": "--triton-docker-image",
    "triton_docker_shm_size": "--triton-docker-shm-size",
    "triton_docker_mounts": "--triton-docker-mounts",
}
# Seconds in the file, milliseconds in our flags.
SECONDS_FLAGS = {"duration_seconds": "--baseline-duration", "monitoring_interval": "--metrics-interval"}
# perf_analyzer_flags this tool passes on, and our flag for each.
PERF_ANALYZER_FLAGS = {
    "shape": "--shape",
    "input-data": "--input-data",
    "string-length": "--string-length",
    "shared-memory": "--shared-memory",
    "request-distribution": "--request-distribution",
    "measurement-interval": "--measurement-interval",
}
# The per-model perf_analyzer_flags that are a model's own inputs (spec models[].inputs on the wire).
INPUT_FIELDS = {"input-data": "data", "string-length": "stringLength", "shared-memory": "sharedMemory"}
# Keys that shape only Model Analyzer's own files and checkpoints: accepted, and said to have no effect here.
NO_EFFECT = {
    "checkpoint_directory": "analysis.json in --export-path is the checkpoint, rewritten after each point: continue a "
    "stopped run with --resume",
    "output_model_repository_path": "the winning config is written under --export-path (<model>/config.pbtxt)",
    "override_output_model_repository": "the winning config is written under --export-path, never over a folder",
    "collect_cpu_metrics": "CPU use is always collected",
    "perf_output": "perf_analyzer's output is read by this tool, not echoed",
    "skip_summary_reports": "the report is always one HTML page (report.html)",
}
# Keys refused with what to do instead.
REFUSED = {
    "triton_server_flags": "this tool starts Triton with the flags it needs; run Triton yourself and give "
    "triton_http_endpoint (remote mode) for other flags",
    "triton_server_environment": "set the environment of the shell that runs model-analyzer, or run Triton yourself",
    "triton_install_path": "the c_api launch mode is not supported; use local or remote",
    "run_config_search_mode": "the search is this tool's own (a concurrency or request-rate climb, and the config "
    "variants you list); remove the key",
    "weighting": "models are ranked on their own, not weighted against each other",
    "perf_analyzer_cpu_util": "the load generator's CPU use is recorded with each point (Load Generator Bottleneck, "
    "over 80% of its budget)",
    "perf_analyzer_max_auto_adjusts": "windows are adjusted by this tool's convergence rule (--convergence)",
    "client_max_retries": "a point that fails is recorded as failed, not retried",
    "num_configs_per_model": "every measured point is in the report",
    "num_top_model_configs": "the best config per model is written under --export-path",
    "inference_output_fields": "the CSV files have Model Analyzer's columns first, then this tool's",
    "gpu_output_fields": "the CSV files have Model Analyzer's columns first, then this tool's",
    "server_output_fields": "the CSV files have Model Analyzer's columns first, then this tool's",
    "filename_model_inference": "the files keep Model Analyzer's default names",
    "filename_model_gpu": "the files keep Model Analyzer's default names",
    "filename_server_only": "the files keep Model Analyzer's default names",
    "reload_model_disable": "models are loaded and unloaded by this tool",
    "triton_output_path": "the started server's log is written under --export-path",
}
HANDLED = {
    "profile_models", "batch_sizes", "concurrency", "request_rate", "perf_analyzer_flags", "objectives",
    "constraints", "triton_launch_mode", "run_config_search_disable", "run_config_search_min_concurrency",
    "run_config_search_min_instance_count", "run_config_search_max_instance_count",
    "run_config_search_min_model_batch_size", "run_config_search_max_model_batch_size", "request_rate_search_enable",
    "run_config_profile_models_concurrently_enable", "triton_docker_labels", "gpus",
}  # fmt: skip
MODEL_KEYS = {"parameters", "model_config_parameters", "perf_analyzer_flags", "objectives", "constraints"}
KNOWN = set(VALUE_FLAGS) | set(SECONDS_FLAGS) | set(NO_EFFECT) | set(REFUSED) | HANDLED

OBJECTIVES = {
    "perf_throughput": "maximize-throughput",
    "perf_latency_p99": "minimize-latency",
    "output_token_throughput": "maximize-output-tokens",
}
CONSTRAINTS = {
    "perf_throughput": ("min", "--min-throughput"),
    "perf_latency_p99": ("max", "--latency-budget"),
    "gpu_used_memory": ("max", "--max-gpu-memory"),
    "time_to_first_token_p99": ("max", "--ttft-budget"),
    "inter_token_latency_p99": ("max", "--itl-budget"),
}


def _unknown(key: str, known: set[str], where: str) -> MaConfigError:
    near = difflib.get_close_matches(key, sorted(known), n=1)
    hint = f"; did you mean {near[0]}?" if near else ""
    return MaConfigError(f"{where}{key} is not a Model Analyzer key this tool knows{hint}")


def number_list(value: Any, key: str) -> list[float]:
    """Model Analyzer's list forms: a number, "1,2,4", [1, 2, 4], or {start, stop, step} (stop included)."""
    if isinstance(value, bool):
        raise MaConfigError(f"{key}: {value!r} is not a number or a list of numbers")
    if isinstance(value, int | float):
        return [value]
    if isinstance(value, str):
        try:
            return [float(v) if "." in v else int(v) for v in (p.strip() for p in value.split(",")) if v]
        except ValueError:
            raise MaConfigError(f"{key}: {value!r} is not a comma-separated list of numbers") from None
    if isinstance(value, list) and value and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        return list(value)
    if isinstance(value, dict) and set(value) <= {"start", "stop", "step"} and "start" in value and "stop" in value:
        start, stop, step = value["start"], value["stop"], value.get("step", 1)
        if not all(isinstance(v, int) for v in (start, stop, step)) or step < 1 or stop < start:
            raise MaConfigError(f"{key}: a range needs whole start <= stop and step >= 1, not {value!r}")
        return list(range(start, stop + 1, step))
    raise MaConfigError(f"{key}: {value!r} is not a number, a comma-separated list, a list or a {{start, stop}} range")


def _joined(values: list[float]) -> str:
    return ",".join(str(int(v)) if float(v).is_integer() else str(v) for v in values)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _perf_analyzer_flags(flags: Any, where: str, model: str | None) -> tuple[list[str], dict[str, Any]]:
    """A perf_analyzer_flags block: the flags it gives (a model's shapes scoped to it), and, for a model, its own
    inputs (the spec's wire form)."""
    if not isinstance(flags, dict):
        raise MaConfigError(f"{where}perf_analyzer_flags must be a mapping of perf_analyzer flags to values")
    argv: list[str] = []
    inputs: dict[str, Any] = {}
    for key, value in flags.items():
        if key == "percentile":
            if value != 99:
                raise MaConfigError(
                    f"{where}perf_analyzer_flags percentile {value}: this tool reports p50 to p99 and judges p99; "
                    "remove it or set 99"
                )
            continue
        if key not in PERF_ANALYZER_FLAGS:
            raise MaConfigError(
                f"{where}perf_analyzer_flags {key} is not passed on by this tool (it passes "
                f"{', '.join(sorted([*PERF_ANALYZER_FLAGS, 'percentile']))}); remove it"
            )
        if key == "shape":
            for shape in _as_list(value):
                try:
                    text = parse_shape(str(shape)).text
                except ValueError as exc:
                    raise MaConfigError(f"{where}perf_analyzer_flags shape: {exc}") from None
                argv += ["--shape", f"{model}/{text}" if model else text]
            continue
        if key == "input-data" and isinstance(value, list):
            if len(value) != 1:
                raise MaConfigError(f"{where}perf_analyzer_flags input-data: give one file (this tool sends one)")
            value = value[0]
        if model and key in ("input-data", "string-length", "shared-memory"):
            inputs[INPUT_FIELDS[key]] = value
            continue
        if model:
            raise MaConfigError(f"{where}perf_analyzer_flags {key} applies to every model; put it at the top level")
        argv += [PERF_ANALYZER_FLAGS[key], str(value)]
    return argv, inputs


def _objective(value: Any, where: str) -> str:
    names = list(value) if isinstance(value, dict | list) else [value]
    if len(names) != 1:
        raise MaConfigError(
            f"{where}objectives {names}: weighted objectives are not supported; give one of "
            f"{', '.join(OBJECTIVES)} (and bounds as constraints)"
        )
    name = str(names[0])
    if name not in OBJECTIVES:
        raise MaConfigError(f"{where}objectives {name} is not supported; give perf_throughput or perf_latency_p99")
    return OBJECTIVES[name]


def _constraints(value: Any, where: str) -> list[str]:
    if not isinstance(value, dict):
        raise MaConfigError(f"{where}constraints must be a mapping like perf_latency_p99: {{max: 20}}")
    argv: list[str] = []
    for name, bound in value.items():
        if name not in CONSTRAINTS:
            raise _unknown(str(name), set(CONSTRAINTS), f"{where}constraints ")
        side, flag = CONSTRAINTS[name]
        if not isinstance(bound, dict) or set(bound) != {side}:
            raise MaConfigError(f"{where}constraints {name} takes {side}: <number>, not {bound!r}")
        argv += [flag, str(bound[side])]
    return argv


def _config_search(parameters: Any, where: str, notes: list[str]) -> dict[str, Any]:
    """model_config_parameters as a configSearch (instance counts, max batch sizes, dynamic batching)."""
    if not isinstance(parameters, dict):
        raise MaConfigError(f"{where}model_config_parameters must be a mapping")
    search: dict[str, Any] = {}
    for key, value in parameters.items():
        if key == "max_batch_size":
            search["maxBatchSizes"] = [int(v) for v in number_list(value, f"{where}max_batch_size")]
        elif key == "dynamic_batching":
            if value not in ({}, None, True, [{}]):
                raise MaConfigError(
                    f"{where}model_config_parameters dynamic_batching: only on ({{}}) is supported, not its settings "
                    f"({value!r}); the model's own dynamic_batching settings are kept"
                )
            search["dynamicBatching"] = [True]
        elif key == "instance_group":
            search["instanceCounts"] = _instance_counts(value, where, notes)
        else:
            raise MaConfigError(
                f"{where}model_config_parameters {key} is not varied by this tool (it varies max_batch_size, "
                "dynamic_batching and instance_group counts)"
            )
    return search


def _instance_counts(value: Any, where: str, notes: list[str]) -> list[int]:
    groups = [g for item in _as_list(value) for g in _as_list(item)]
    counts: list[int] = []
    for group in groups:
        if not isinstance(group, dict) or not set(group) <= {"kind", "count"} or "count" not in group:
            raise MaConfigError(f"{where}instance_group: each group takes count (and kind), not {group!r}")
        counts += [int(c) for c in number_list(group["count"], f"{where}instance_group count")]
    kinds = sorted({str(g["kind"]) for g in groups if "kind" in g})
    if kinds:
        notes.append(f"config file: {where}instance_group kind {', '.join(kinds)}: the model's own kind is kept, "
                     "only the count varies")  # fmt: skip
    return sorted(set(counts))


def _parameters(block: Any, where: str) -> dict[str, list[float]]:
    if not isinstance(block, dict):
        raise MaConfigError(f"{where}parameters must be a mapping of batch_sizes, concurrency or request_rate")
    found = {}
    for key, value in block.items():
        if key not in ("batch_sizes", "concurrency", "request_rate"):
            raise _unknown(str(key), {"batch_sizes", "concurrency", "request_rate"}, f"{where}parameters ")
        found[key] = number_list(value, f"{where}{key}")
    return found


def _profile_models(value: Any) -> dict[str, dict[str, Any]]:
    if isinstance(value, str):
        return {name.strip(): {} for name in value.split(",") if name.strip()}
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return {name: {} for name in value}
    if isinstance(value, dict):
        models = {}
        for name, block in value.items():
            block = block or {}
            if not isinstance(block, dict):
                raise MaConfigError(f"profile_models {name}: expected a mapping of its settings")
            for key in block:
                if key not in MODEL_KEYS:
                    extra = f" ({REFUSED[key]})" if key in REFUSED else ""
                    if key == "cpu_only":
                        extra = " (the model runs as its own config places it; set its instance_group kind)"
                    if extra:
                        raise MaConfigError(f"profile_models {name}: {key} is not supported{extra}")
                    raise _unknown(str(key), MODEL_KEYS, f"profile_models {name}: ")
            models[str(name)] = block
        return models
    raise MaConfigError("profile_models must be a comma-separated string, a list of names or a mapping per model")


def _one_value(per_model: dict[str, Any], what: str) -> Any:
    """What every model gives for `what` (None when none does); refused when models give different ones."""
    given = {name: v for name, v in per_model.items() if v is not None}
    if len({repr(v) for v in given.values()}) > 1:
        raise MaConfigError(
            f"profile_models give different {what} ({', '.join(given)}); this tool measures every model of a run "
            "with one set: profile them in separate runs (or give it at the top level)"
        )
    return next(iter(given.values()), None)


def read_ma_config(document: Any) -> MaProfileConfig:
    """The profile YAML document as flags, per-model settings and notes; MaConfigError on what cannot be honoured."""
    if not isinstance(document, dict):
        raise MaConfigError("the config file must be a YAML mapping of Model Analyzer keys (model_repository, ...)")
    config = MaProfileConfig()
    for key in document:
        if key not in KNOWN:
            raise _unknown(str(key), KNOWN, "")
        if key in REFUSED:
            raise MaConfigError(f"{key} is not supported: {REFUSED[key]}")
        if key in NO_EFFECT:
            config.notes.append(f"config file: {key} has no effect here: {NO_EFFECT[key]}")
    argv = config.argv
    for key, flag in VALUE_FLAGS.items():
        if key in document:
            value = document[key]  # a list (bls_composing_models: [a, b]) is the flag's comma-separated form
            argv += [flag, ",".join(str(v) for v in value) if isinstance(value, list) else str(value)]
    if "export_path" in document:
        argv.append("--export")
    for key, flag in SECONDS_FLAGS.items():
        if key in document:
            argv += [flag, str(round(float(document[key]) * 1000))]

    mode = document.get("triton_launch_mode", "local")
    if mode not in ("local", "docker", "remote"):
        raise MaConfigError(
            f"triton_launch_mode {mode}: this tool launches local (it starts Triton), docker (it starts Triton's "
            "container) or remote (it profiles the server at triton_http_endpoint); c_api is not supported"
        )
    if mode != "local":
        argv += ["--triton-launch-mode", mode]
    docker_keys = [k for k in ("triton_docker_image", "triton_docker_shm_size", "triton_docker_mounts",
                               "triton_docker_labels", "gpus") if k in document]  # fmt: skip
    if docker_keys and mode != "docker":
        raise MaConfigError(f"{', '.join(docker_keys)} shape the Triton container of triton_launch_mode docker; set "
                            "the mode or remove them (in local mode the server uses the GPUs it sees: limit them "
                            "with CUDA_VISIBLE_DEVICES)")  # fmt: skip
    if "triton_docker_labels" in document:
        labels = document["triton_docker_labels"]
        if not isinstance(labels, dict):
            raise MaConfigError("triton_docker_labels is a mapping of label to value, e.g. {team: vision}")
        argv += ["--triton-docker-labels", ",".join(f"{k}={v}" for k, v in labels.items())]
    if "gpus" in document:
        gpus = document["gpus"]
        argv += ["--triton-gpus", ",".join(str(g) for g in gpus) if isinstance(gpus, list) else str(gpus)]
    if mode == "remote" and "triton_http_endpoint" not in document:
        raise MaConfigError("triton_launch_mode remote needs triton_http_endpoint, the running server's host:port")
    if mode == "local" and "triton_http_endpoint" in document:
        raise MaConfigError("triton_http_endpoint is for triton_launch_mode remote; set the mode or remove it")

    models = _profile_models(document.get("profile_models", {}))
    if not models:
        raise MaConfigError("profile_models names no model; list the models to profile")
    argv += ["--model-names", ",".join(models)]

    # Load and batch: the top level, or what every model gives alike (Model Analyzer lets a model's own win).
    parameters = {name: _parameters(block.get("parameters", {}), f"profile_models {name}: ") for name, block in
                  models.items()}  # fmt: skip
    loads: dict[str, list[float]] = {}
    for key in ("batch_sizes", "concurrency", "request_rate"):
        models_give = _one_value({n: p.get(key) for n, p in parameters.items()}, f"parameters {key}")
        top = number_list(document[key], key) if key in document else None
        some_only = any(key not in p for p in parameters.values())
        if models_give is not None and top is not None and len(parameters) > 1 and some_only:
            raise MaConfigError(f"{key} is given at the top level and for some models only; give it one way")
        chosen = models_give if models_give is not None else top
        if chosen is not None:
            loads[key] = chosen
    if "concurrency" in loads and "request_rate" in loads:
        raise MaConfigError("concurrency and request_rate are both given; an analysis offers one kind of load")
    if "batch_sizes" in loads:
        argv += ["--batch", _joined(loads["batch_sizes"])]
    search_disabled = bool(document.get("run_config_search_disable", False))
    if document.get("run_config_profile_models_concurrently_enable"):
        argv.append("--concurrent")
    if document.get("request_rate_search_enable"):
        if "concurrency" in loads:
            raise MaConfigError("request_rate_search_enable with concurrency: an analysis offers one kind of load")
        argv += ["--request-rate", "auto" if "request_rate" not in loads else _joined(loads["request_rate"])]
    elif "request_rate" in loads:
        argv += ["--request-rate", _joined(loads["request_rate"])]
    elif "concurrency" in loads:
        argv += ["--concurrency", _joined(loads["concurrency"])]
    elif not search_disabled:
        argv += ["--concurrency", "auto"]  # Model Analyzer's default: search concurrency
    if document.get("run_config_search_min_concurrency", 1) != 1:
        raise MaConfigError("run_config_search_min_concurrency: the climb starts at 1 here; remove it or set 1")

    # Config variants: each model's model_config_parameters, else the search bounds given at the top level.
    bounds = _search_bounds(document)
    for name, block in models.items():
        settings: dict[str, Any] = {}
        where = f"profile_models {name}: "
        if "model_config_parameters" in block:
            settings["configSearch"] = _config_search(block["model_config_parameters"], where, config.notes)
        elif bounds:
            settings["configSearch"] = dict(bounds)
        flags, inputs = _perf_analyzer_flags(block.get("perf_analyzer_flags", {}), where, name)
        argv += flags
        if inputs:
            settings["inputs"] = inputs
        if settings:
            config.models[name] = settings

    flags, _ = _perf_analyzer_flags(document.get("perf_analyzer_flags", {}), "", None)
    argv += flags
    objective = _one_value({n: b.get("objectives") for n, b in models.items()}, "objectives")
    objective = document.get("objectives") if objective is None else objective
    if objective is not None:
        argv += ["--objective", _objective(objective, "")]
    constraints = _one_value({n: b.get("constraints") for n, b in models.items()}, "constraints")
    constraints = document.get("constraints") if constraints is None else constraints
    if constraints is not None:
        argv += _constraints(constraints, "")
    return config


def _search_bounds(document: dict[str, Any]) -> dict[str, Any]:
    """run_config_search_{min,max}_{instance_count,model_batch_size} as a configSearch: every count, and max batch
    sizes in powers of two, as Model Analyzer's brute search steps them. Only where the file gives a bound."""
    bounds: dict[str, Any] = {}
    low, high = (document.get(f"run_config_search_{s}_instance_count") for s in ("min", "max"))
    if low is not None or high is not None:
        bounds["instanceCounts"] = list(range(int(low or 1), int(high or 5) + 1))
    low, high = (document.get(f"run_config_search_{s}_model_batch_size") for s in ("min", "max"))
    if low is not None or high is not None:
        sizes, size = [], 1
        while size <= int(high or 128):
            if size >= int(low or 1):
                sizes.append(size)
            size *= 2
        bounds["maxBatchSizes"] = sizes
    return bounds

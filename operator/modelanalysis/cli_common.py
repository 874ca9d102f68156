"""What every model-analyzer command shares: one way to fail with a sentence, the parsing of list flags, and
the measurement flags."""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar, cast, get_type_hints

import typer
from pydantic import ValidationError
from rich.console import Console

from modelanalysis.core.inputs import RANDOM, ZERO, InputSettings, SharedMemory, parse_input_data, parse_shape
from modelanalysis.core.spec import (
    DEFAULT_MAX_SEARCH_RATE,
    DEFAULT_MIN_SEARCH_RATE,
    ConcurrencySearch,
    ConfigSearch,
    Constraints,
    MeasurementSettings,
    ModelTarget,
    Objective,
    RequestRateSearch,
)

# soft_wrap: an error stays on one line when stderr is not a terminal (logs, CI).
console = Console(stderr=True, soft_wrap=True)


def fail(message: str) -> typer.Exit:
    """Print `message` as the one error sentence and return the exit to raise (status 1, no traceback)."""
    console.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code=1)


def parse_int_list(flag: str, text: str) -> list[int]:
    """'1,4,8' -> [1, 4, 8], or a sentence that says what is wrong with it."""
    values = []
    for item in text.split(","):
        item = item.strip()
        if not item.isdecimal() or int(item) < 1:  # isdigit() also accepts "²", which int() refuses
            raise fail(
                f"{flag} {text!r}: {item!r} is not a positive integer; give a comma-separated list like 1,4,8"
                + (" or auto." if flag == "--concurrency" else ".")
            )
        values.append(int(item))
    return values


CONCURRENCY_HELP = (
    "Comma-separated client concurrency values, e.g. 1,2,4; or auto: climb 1, 2, 4, ... and stop where throughput "
    "no longer rises (or p99 passes --latency-budget, then bisect for the highest concurrency under it)."
)
MAX_CONCURRENCY_HELP = "With --concurrency auto: the highest concurrency the climb may reach."


REQUEST_RATE_HELP = (
    "Open-loop load instead of --concurrency: comma-separated request rates (requests per second), e.g. 100,200,400; "
    "or auto: double from --min-request-rate until a rate is no longer delivered (or p99 passes --latency-budget), "
    "then bisect for the highest that holds. A point whose rate was not delivered says so."
)
MIN_RATE_HELP = f"With --request-rate auto: the first rate of the climb (default {DEFAULT_MIN_SEARCH_RATE})."
MAX_RATE_HELP = f"With --request-rate auto: the highest rate the climb may reach (default {DEFAULT_MAX_SEARCH_RATE})."


@dataclass(frozen=True)
class LoadFlags:
    """--concurrency / --request-rate as the spec's load fields (one kind of load)."""

    concurrency: list[int] | None = None
    concurrency_search: ConcurrencySearch | None = None
    request_rate: list[float] | None = None
    request_rate_search: RequestRateSearch | None = None

    def spec_fields(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


RATE_SEARCH_FLAGS = {"min_rate": "--min-request-rate", "max_rate": "--max-request-rate"}


def parse_load(
    concurrency: str | None,
    max_concurrency: int | None,
    request_rate: str | None,
    min_request_rate: float | None = None,
    max_request_rate: float | None = None,
) -> LoadFlags:
    """--concurrency (values or auto) or --request-rate (values or auto): one kind of load."""
    rate_bounds = {"min_rate": min_request_rate, "max_rate": max_request_rate}
    if request_rate is None:
        if any(v is not None for v in rate_bounds.values()):
            raise fail("--min-request-rate and --max-request-rate are for --request-rate auto.")
        values, search = parse_concurrency(concurrency or "1", max_concurrency)
        return LoadFlags(concurrency=values, concurrency_search=search)
    if concurrency is not None or max_concurrency is not None:
        raise fail("give either --request-rate (open loop) or --concurrency (closed loop), not both.")
    if request_rate.strip().lower() == "auto":
        try:
            found = RequestRateSearch(**{k: v for k, v in rate_bounds.items() if v is not None})
        except ValidationError as exc:
            where = exc.errors()[0]["loc"]
            flag = RATE_SEARCH_FLAGS.get(str(where[0]), "--request-rate auto") if where else "--request-rate auto"
            raise fail(f"{flag}: {exc.errors()[0]['msg'].removeprefix('Value error, ')}.") from None
        return LoadFlags(request_rate_search=found)
    if any(v is not None for v in rate_bounds.values()):
        raise fail("--min-request-rate and --max-request-rate are for --request-rate auto; a list is its own steps.")
    rates = []
    for item in request_rate.split(","):
        try:
            rate = float(item)
        except ValueError:
            rate = 0.0
        if not rate > 0 or rate != rate or rate == float("inf"):
            raise fail(
                f"--request-rate {request_rate!r}: {item.strip()!r} is not a positive number of requests per second; "
                "give a comma-separated list like 100,200,400."
            )
        rates.append(rate)
    return LoadFlags(request_rate=rates)


INPUT_HELP = {
    "shape": "Shape of a variable-size input, perf_analyzer's NAME:D1[,D2...] (dims after the batch one), e.g. "
    "INPUT_IDS:128; MODEL/NAME:DIMS for one model only. Repeat it for several inputs.",
    "input_data": "What perf_analyzer sends: random (default), zero, or a JSON file in its input-data format.",
    "string_length": "Length of the random strings sent to BYTES inputs.",
    "shared_memory": "How tensors reach Triton: none (default), system, or cuda (a GPU on this machine).",
}


def parse_inputs(
    shapes: list[str] | None,
    input_data: str | None,
    string_length: int | None,
    shared_memory: SharedMemory | None,
    model_names: list[str],
) -> tuple[InputSettings, dict[str, InputSettings]]:
    """The input flags as spec.inputs and each model's own (a MODEL/NAME:DIMS shape is that model's alone)."""
    general: list[str] = []
    scoped: dict[str, list[str]] = {}
    for text in shapes or []:
        prefix, _, rest = text.partition("/")
        model = prefix if rest and prefix in model_names else None
        try:
            shape = parse_shape(rest if model else text)
        except ValueError as exc:
            raise fail(f"--shape {text!r}: {exc}.") from None
        (scoped.setdefault(model, []) if model else general).append(shape.text)
    try:
        settings = InputSettings(
            shapes=general or None, data=input_data, string_length=string_length, shared_memory=shared_memory
        )
    except ValidationError as exc:
        raise fail(f"invalid input options: {explain(exc)}.") from None
    return settings, {model: InputSettings(shapes=given) for model, given in scoped.items()}


CONFIG_FILE_HELP = (
    "Model Analyzer's profile YAML (model_repository, profile_models, batch_sizes, concurrency, perf_analyzer_flags, "
    "objectives, constraints, ...): its keys become these flags; flags given here override it. A key this tool does "
    "not support is refused, naming it."
)
MODEL_SETTINGS_HELP = "Each model's own settings from a config file, as JSON (set by -f)."


def model_targets(
    names: list[str],
    config_search: ConfigSearch | None,
    own_inputs: dict[str, InputSettings],
    model_settings: str | None,
    bls_composing_models: list[str] | None = None,
) -> list[ModelTarget]:
    """The models to profile: the config-search flags (when given) for every model, else each model's own from
    the config file; a model's inputs from the file, with its shapes from the command line over them."""
    try:
        settings = json.loads(model_settings) if model_settings else {}
        targets = []
        for name in names:
            own = settings.get(name, {})
            search = config_search or (ConfigSearch.model_validate(own["configSearch"]) if "configSearch" in own
                                       else None)  # fmt: skip
            from_file = InputSettings.model_validate(own["inputs"]) if "inputs" in own else None
            given = own_inputs.get(name)
            inputs = given.merged_over(from_file) if given and from_file else given or from_file
            bls = bls_composing_models or own.get("blsComposingModels")
            targets.append(ModelTarget(name=name, config_search=search, inputs=inputs, bls_composing_models=bls))
        return targets
    except ValidationError as exc:
        raise fail(f"invalid model settings: {explain(exc)}.") from None


def check_input_data_file(path: str | None) -> None:
    """A local --input-data file that is missing or not perf_analyzer's format fails now, before any server
    starts (each model's own inputs are checked against it once loaded)."""
    if path is None or path in (RANDOM, ZERO):
        return
    try:
        parse_input_data(Path(path).read_text(), path)
    except OSError as exc:
        message = f"--input-data {path}: cannot read it ({exc.strerror or exc}); give random, zero or a JSON file."
        raise fail(message) from None
    except ValueError as exc:
        raise fail(f"--input-data: {exc}.") from None


def parse_concurrency(text: str, max_concurrency: int | None) -> tuple[list[int] | None, ConcurrencySearch | None]:
    """--concurrency as the spec's two fields: a list of values, or `auto` (a search)."""
    if text.strip().lower() == "auto":
        try:
            return None, ConcurrencySearch.model_validate(
                {} if max_concurrency is None else {"maxConcurrency": max_concurrency}
            )
        except ValidationError as exc:
            raise fail(f"--max-concurrency {max_concurrency}: {exc.errors()[0]['msg']}.") from None
    if max_concurrency is not None:
        raise fail("--max-concurrency is for --concurrency auto; with a list, the list's largest value is the most.")
    return parse_int_list("--concurrency", text), None


CONFIG_SEARCH_HELP = {
    "instance_counts": "Config search: instance counts to try, e.g. 1,2 (each combination is one variant).",
    "max_batch_sizes": "Config search: max_batch_size values to try, e.g. 8,32.",
    "dynamic_batching": "Config search: dynamic batching off, on, or off,on.",
}


def parse_config_search(
    instance_counts: str | None, max_batch_sizes: str | None, dynamic_batching: str | None
) -> ConfigSearch | None:
    """The config-search flags as one ConfigSearch (None when none is given): the same for every model."""
    if instance_counts is None and max_batch_sizes is None and dynamic_batching is None:
        return None
    switches = None
    if dynamic_batching is not None:
        words = [w.strip().lower() for w in dynamic_batching.split(",") if w.strip()]
        if not words or any(w not in ("off", "on") for w in words):
            raise fail(f"--dynamic-batching {dynamic_batching!r}: give off, on, or off,on.")
        switches = [w == "on" for w in words]
    try:
        return ConfigSearch(
            instance_counts=parse_int_list("--instance-counts", instance_counts) if instance_counts else None,
            max_batch_sizes=parse_int_list("--max-batch-sizes", max_batch_sizes) if max_batch_sizes else None,
            dynamic_batching=switches,
        )
    except ValidationError as exc:
        raise fail(f"invalid config search: {explain(exc)}.") from None


def explain(error: ValidationError) -> str:
    """The first validation error as `where: what`."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    what = first["msg"].removeprefix("Value error, ")  # our own validators' sentences stand alone
    return f"{where}: {what}" if where else what


# Each measurement setting's flag (the original tool's name where it had one). Defaults, types and help come
# from MeasurementSettings, the one source the CRD is generated from too.
MEASUREMENT_FLAGS: dict[str, str] = {
    "protocol": "--protocol",
    "request_distribution": "--request-distribution",
    "measurement_interval_ms": "--measurement-interval",
    "convergence_pct": "--convergence",
    "max_point_seconds": "--max-point-seconds",
    "max_windows": "--max-trials",
    "stability_percentage": "--stability-percentage",
    "point_timeout_seconds": "--point-timeout",
    "metrics_interval_ms": "--metrics-interval",
    "baseline_duration_ms": "--baseline-duration",
}

Command = TypeVar("Command", bound=Callable[..., Any])


def with_measurement_options(command: Command) -> Command:
    """Give a typer command one flag per measurement setting, and hand it `measurement=MeasurementSettings`
    built from them (a value the model refuses ends in a sentence, not a traceback)."""
    hints = get_type_hints(command, include_extras=True)
    signature = inspect.signature(command)
    parameters = [
        p.replace(annotation=hints.get(p.name, p.annotation))  # resolved: typer reads them from the signature
        for p in signature.parameters.values()
        if p.name != "measurement"
    ]
    annotations = {name: hint for name, hint in hints.items() if name != "measurement"}
    for name, flag in MEASUREMENT_FLAGS.items():
        field = MeasurementSettings.model_fields[name]
        annotations[name] = Annotated[field.annotation, typer.Option(flag, help=field.description)]
        parameters.append(
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=field.default, annotation=annotations[name])
        )

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        values = {name: kwargs.pop(name) for name in MEASUREMENT_FLAGS}
        try:
            measurement = MeasurementSettings(**values)
        except ValidationError as exc:
            flag = MEASUREMENT_FLAGS.get(str(exc.errors()[0]["loc"][0]), "")
            raise fail(f"invalid options: {flag}: {exc.errors()[0]['msg']}") from None
        return command(*args, measurement=measurement, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    wrapper.__annotations__ = annotations
    return cast(Command, wrapper)


# The objective and constraint flags, shared by `profile` and `manifest`: (flag, metavar, help, wire path).
CONSTRAINT_FLAGS: dict[str, tuple[str, str, str, tuple[str, str]]] = {
    "latency_budget": ("--latency-budget", "MS", "Constraint: p99 latency at most MS.", ("p99LatencyMs", "max")),
    "min_throughput": (
        "--min-throughput", "INFER/SEC", "Constraint: throughput at least this.", ("throughputInferPerSec", "min")
    ),
    "max_gpu_memory": (
        "--max-gpu-memory", "MB", "Constraint: GPU memory used at most MB (where measured).", ("gpuMemoryMB", "max")
    ),
    "ttft_budget": (
        "--ttft-budget", "MS", "Constraint for streaming models: p99 time to first token at most MS; a load search "
        "stops on it and bisects for the most concurrent users under it.", ("ttftP99Ms", "max")
    ),
    "itl_budget": (
        "--itl-budget", "MS", "Constraint for streaming models: p99 inter-token latency at most MS (a load search "
        "stops on it too).", ("itlP99Ms", "max")
    ),
}  # fmt: skip


def with_objective_options(command: Command) -> Command:
    """Give a typer command --objective and the constraint flags, and hand it `objective=` and `constraints=`
    (a value the model refuses ends in a sentence, not a traceback)."""
    hints = get_type_hints(command, include_extras=True)
    signature = inspect.signature(command)
    parameters = [
        p.replace(annotation=hints.get(p.name, p.annotation))
        for p in signature.parameters.values()
        if p.name not in ("objective", "constraints")
    ]
    annotations = {name: hint for name, hint in hints.items() if name not in ("objective", "constraints")}
    annotations["objective"] = Annotated[
        Objective, typer.Option(help="How the best point is chosen among those within the constraints.")
    ]
    parameters.append(
        inspect.Parameter("objective", inspect.Parameter.KEYWORD_ONLY, default=Objective.MAXIMIZE_THROUGHPUT,
                          annotation=annotations["objective"])
    )  # fmt: skip
    for name, (flag, metavar, help_text, _) in CONSTRAINT_FLAGS.items():
        annotations[name] = Annotated[float | None, typer.Option(flag, metavar=metavar, help=help_text)]
        parameters.append(
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotations[name])
        )

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        objective = kwargs.pop("objective")
        wire: dict[str, dict[str, float]] = {}
        for name, (_, _, _, (field, bound)) in CONSTRAINT_FLAGS.items():
            value = kwargs.pop(name)
            if value is not None:
                wire[field] = {bound: value}
        try:
            constraints = Constraints.model_validate(wire)
        except ValidationError as exc:
            field = str(exc.errors()[0]["loc"][0])
            flag = next((f for f, _, _, (wire_field, _) in CONSTRAINT_FLAGS.values() if wire_field == field), field)
            raise fail(f"invalid options: {flag}: {exc.errors()[0]['msg']}") from None
        return command(*args, objective=objective, constraints=constraints, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    wrapper.__annotations__ = annotations
    return cast(Command, wrapper)


class LaunchMode(StrEnum):
    LOCAL = "local"
    DOCKER = "docker"
    REMOTE = "remote"


LAUNCH_MODE_ENV = "MODEL_ANALYZER_TRITON_LAUNCH_MODE"


def launch_mode(asked: LaunchMode | None, triton_url: str | None, default: str | None = None) -> LaunchMode:
    """The launch mode: the flag; else remote where a server is named; else `default` (the environment's
    MODEL_ANALYZER_TRITON_LAUNCH_MODE: the project image sets docker, having no tritonserver), else local.
    A sentence when the flag and --triton-url disagree, or the default is not a mode."""
    if asked is None:
        if triton_url:
            return LaunchMode.REMOTE
        if not default:
            return LaunchMode.LOCAL
        if default not in (LaunchMode.LOCAL, LaunchMode.DOCKER):
            raise fail(f"{LAUNCH_MODE_ENV}={default} is not a launch mode that starts Triton: set it to local or "
                       "docker, or unset it.")  # fmt: skip
        return LaunchMode(default)
    if asked == LaunchMode.REMOTE and not triton_url:
        raise fail("--triton-launch-mode remote profiles a running server: give its --triton-url host:port.")
    if asked != LaunchMode.REMOTE and triton_url:
        raise fail(f"--triton-url names a running server, but --triton-launch-mode {asked} starts one: use "
                   "--triton-launch-mode remote, or leave --triton-url out.")  # fmt: skip
    return asked


def parse_labels(text: str | None) -> dict[str, str]:
    labels = {}
    for pair in (p.strip() for p in (text or "").split(",") if p.strip()):
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise fail(f"--triton-docker-labels {pair!r} is not key=value.")
        labels[key] = value
    return labels

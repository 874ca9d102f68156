"""model-analyzer: profile Triton models from the command line.

`model-analyzer profile` runs the sweep on this machine, starting a local Triton unless --triton-url names one.
The original tool took its flags with no subcommand; that form still works and means `profile`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
import yaml
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from modelanalysis import __version__, cli_cluster
from modelanalysis.adapters.dcgm_prometheus import DcgmMemoryUtilization
from modelanalysis.adapters.files import write_atomic
from modelanalysis.adapters.local_triton import TritonNotFound, find_local_triton
from modelanalysis.adapters.model_repository import OUTPUT_MODEL_REPOSITORY, NoProtobuf, write_deployable_model
from modelanalysis.adapters.perf_analyzer import PerfAnalyzerError, find_perf_analyzer, measure_point, measure_together
from modelanalysis.adapters.triton_control import TritonControl, TritonUnreachable
from modelanalysis.adapters.triton_docker import DEFAULT_SHM_SIZE, DockerLaunch, TritonContainer, image_for
from modelanalysis.adapters.triton_server import StartedTriton, TritonEndpoints, TritonServerProcess, TritonStartError
from modelanalysis.cli_common import (
    CONCURRENCY_HELP,
    CONFIG_FILE_HELP,
    CONFIG_SEARCH_HELP,
    INPUT_HELP,
    LAUNCH_MODE_ENV,
    MAX_CONCURRENCY_HELP,
    MAX_RATE_HELP,
    MIN_RATE_HELP,
    MODEL_SETTINGS_HELP,
    REQUEST_RATE_HELP,
    LaunchMode,
    check_input_data_file,
    console,
    explain,
    fail,
    launch_mode,
    model_targets,
    parse_config_search,
    parse_inputs,
    parse_int_list,
    parse_labels,
    parse_load,
    with_measurement_options,
    with_objective_options,
)
from modelanalysis.core.budget import not_delivered_sentence, search_budgets
from modelanalysis.core.inputs import SharedMemory
from modelanalysis.core.load import Load, number_text
from modelanalysis.core.ma_config import MaConfigError, read_ma_config
from modelanalysis.core.perf import PerfMeasurement
from modelanalysis.core.pipeline import bottleneck
from modelanalysis.core.releases import version_mismatch
from modelanalysis.core.results import (
    NOT_MEASURABLE,
    AnalysisResult,
    BestPoint,
    ModelStatus,
    PointResult,
    PointStatus,
    local_placement,
    together_configs,
)
from modelanalysis.core.resume import resume_refusal, spec_record
from modelanalysis.core.spec import (
    DEFAULT_TRITON_VERSION,
    Constraints,
    MeasurementSettings,
    Objective,
    SweepSpec,
)
from modelanalysis.core.sweep import Point
from modelanalysis.engine import EngineEvent, EventKind, SweepEngine

app = typer.Typer(
    help="Profile models on NVIDIA Triton Inference Server: throughput, latency, GPU and CPU use per point.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# soft_wrap: a message stays one line when stderr is not a terminal (logs, CI, pipes), not folded at 80 columns.
SUBCOMMANDS = {"--help", "-h", "--version"}
CONFIG_FILE_COMMANDS = ("profile", "manifest")
RESULT_JSON = "analysis.json"


def model_table(result: AnalysisResult) -> Table:
    table = Table(title="Model Analyzer results", header_style="bold")
    load_column = result.points[0].load.csv_column if result.points else "Concurrency"
    # A streaming model's numbers, where one streamed: what an LLM is sized by (README: LLMs and streaming models).
    streamed = any(p.perf is not None and p.perf.streamed for p in result.points)
    streaming_columns = ("Tokens/sec", "p99 TTFT (ms)", "p99 ITL (ms)") if streamed else ()
    for column in ("Model", "Batch", load_column, "Throughput (infer/sec)", "95% CI", "Windows", "p50 (ms)",
                   "p99 (ms)", *streaming_columns, "Max GPU Util (%)", "Max GPU Mem (MB)", "Max CPU Util (%)",
                   "Status"):  # fmt: skip
        table.add_column(column, justify="left" if column in ("Model", "Status") else "right")
    table.caption = "95% CI: half-width of throughput's 95% confidence interval over the windows"

    def num(value: float | None, digits: int = 1) -> str:
        return "" if value is None else f"{value:,.{digits}f}"

    def interval(perf: PerfMeasurement | None) -> str:
        if perf is None or perf.throughput_ci_low is None or perf.throughput_ci_high is None:
            return ""
        half = (perf.throughput_ci_high - perf.throughput_ci_low) / 2
        return f"±{100 * half / perf.throughput_infer_per_sec:.1f}%" if perf.throughput_infer_per_sec else ""

    def status(p: PointResult) -> str:
        if p.status != PointStatus.MEASURED:
            return "[red]Failed[/]"
        if not_delivered_sentence(p):
            return "[yellow]Not delivered[/]"
        return "[yellow]Not converged[/]" if p.perf and p.perf.converged is False else "Measured"

    for p in result.points:
        gpus = p.resources.gpus if p.resources else []
        util = max((g.max_utilization_pct for g in gpus if g.max_utilization_pct is not None), default=None)
        mem = max((g.max_memory_used_mb for g in gpus if g.max_memory_used_mb is not None), default=None)
        table.add_row(
            f"{p.variant_name} @ {p.triton_version}" if p.triton_version else p.variant_name,
            str(p.batch_size),
            number_text(p.load.value),
            num(p.perf.throughput_infer_per_sec if p.perf else None),
            interval(p.perf),
            str(p.perf.windows) if p.perf and p.perf.windows else "",
            num(p.perf.latency_p50_ms if p.perf else None, 3),
            num(p.perf.latency_p99_ms if p.perf else None, 3),
            *(
                (num(p.perf.output_tokens_per_sec if p.perf else None),
                 num(p.perf.ttft_p99_ms if p.perf else None, 3),
                 num(p.perf.itl_p99_ms if p.perf else None, 3))
                if streamed else ()
            ),
            num(util),
            num(mem),
            num(p.resources.max_cpu_utilization_pct if p.resources else None),
            status(p),
        )
    return table


def export(result: AnalysisResult, export_path: Path) -> None:
    # pandas takes half a second to import; the load-generator Jobs run this CLI and never export.
    from modelanalysis.core.html_report import REPORT_HTML, render_html
    from modelanalysis.core.report import csv_files

    for name, content in csv_files(result).items():
        write_atomic(export_path / name, content)
    write_atomic(export_path / RESULT_JSON, result.model_dump_json(indent=2))
    write_atomic(export_path / REPORT_HTML, render_html(result))


def winning_configs(result: AnalysisResult) -> dict[str, dict[str, Any]]:
    """Each model's whole config to deploy, by model: from the best combination when the models were measured
    together (their configs go together), else from each model's winning variant (a pipeline's with each composing
    model's config as the winning variant loaded it). Models that won in their own config are not listed."""
    together = result.best.together if result.best else None
    if together is not None and (combination := together_configs(together, result)):
        return combination
    configs: dict[str, dict[str, Any]] = {}
    for best in result.best.per_model if result.best else []:
        outcome = result.outcome(best.variant, best.triton_version) if best.variant else None
        if outcome is not None and outcome.config is not None:
            configs.update({best.model: outcome.config, **(outcome.composing_configs or {})})
    return configs


def export_winners(result: AnalysisResult, export_path: Path, model_folder: Path | None) -> list[Path]:
    """Each model's winning config variant, as a model to deploy: <export>/output_model_repository/<model>/."""
    written = []
    for model, config in winning_configs(result).items():
        source = model_folder / model if model_folder else None
        destination = export_path / OUTPUT_MODEL_REPOSITORY / model
        try:
            written.append(write_deployable_model(config, destination, source))
        except (NoProtobuf, OSError) as exc:
            console.print(f"note: the winning config of {model} was not written out: {exc}", highlight=False)
    return written


@app.command()
@with_measurement_options
@with_objective_options
def profile(
    model_names: Annotated[
        str, typer.Option("--model-names", "-m", help="Comma-separated model names in the model folder.")
    ],
    model_folder: Annotated[
        Path | None,
        typer.Option("--model-folder", help="The Triton model repository. Needed unless --triton-url is given."),
    ] = None,
    batch: Annotated[str, typer.Option("--batch", "-b", help="Comma-separated batch sizes, e.g. 1,4,8.")] = "1",
    concurrency: Annotated[str | None, typer.Option("--concurrency", "-c", help=CONCURRENCY_HELP)] = None,
    max_concurrency: Annotated[int | None, typer.Option(help=MAX_CONCURRENCY_HELP)] = None,
    request_rate: Annotated[str | None, typer.Option("--request-rate", help=REQUEST_RATE_HELP)] = None,
    min_request_rate: Annotated[float | None, typer.Option(help=MIN_RATE_HELP)] = None,
    max_request_rate: Annotated[float | None, typer.Option(help=MAX_RATE_HELP)] = None,
    shape: Annotated[list[str] | None, typer.Option("--shape", help=INPUT_HELP["shape"])] = None,
    input_data: Annotated[str | None, typer.Option("--input-data", help=INPUT_HELP["input_data"])] = None,
    string_length: Annotated[int | None, typer.Option(help=INPUT_HELP["string_length"])] = None,
    shared_memory: Annotated[SharedMemory | None, typer.Option(help=INPUT_HELP["shared_memory"])] = None,
    config_file: Annotated[Path | None, typer.Option("--config-file", "-f", help=CONFIG_FILE_HELP)] = None,
    model_settings: Annotated[str | None, typer.Option(hidden=True, help=MODEL_SETTINGS_HELP)] = None,
    bls_composing_models: Annotated[
        str | None,
        typer.Option(help="Comma-separated models a BLS model calls (Model Analyzer's flag): loaded before it, and "
                     "each of its points broken down by them, as an ensemble's steps are."),
    ] = None,
    instance_counts: Annotated[str | None, typer.Option(help=CONFIG_SEARCH_HELP["instance_counts"])] = None,
    max_batch_sizes: Annotated[str | None, typer.Option(help=CONFIG_SEARCH_HELP["max_batch_sizes"])] = None,
    dynamic_batching: Annotated[str | None, typer.Option(help=CONFIG_SEARCH_HELP["dynamic_batching"])] = None,
    triton_version: Annotated[
        str | None,
        typer.Option(help="Triton release, e.g. 24.08-py3: in docker mode the image nvcr.io/nvidia/tritonserver:"
                     "<version> is started (the operator runs it too); recorded with the results beside the "
                     f"server's own version, and a mismatch is said. Default: {DEFAULT_TRITON_VERSION}."),
    ] = None,
    triton_launch_mode: Annotated[
        LaunchMode | None,
        typer.Option(help="How Triton is had (Model Analyzer's modes): local starts tritonserver here, docker starts "
                     "it in a container through the Docker Engine API (DOCKER_HOST, else /var/run/docker.sock), "
                     "remote profiles the server at --triton-url. Default: remote with --triton-url, else "
                     f"${LAUNCH_MODE_ENV} (the project image sets docker), else local."),
    ] = None,
    triton_docker_image: Annotated[
        str | None,
        typer.Option(help="Docker mode: the image to run (default: nvcr.io/nvidia/tritonserver:<--triton-version>)."),
    ] = None,
    triton_docker_shm_size: Annotated[
        str, typer.Option(help="Docker mode: the container's shared memory (--shm-size).")
    ] = DEFAULT_SHM_SIZE,
    triton_docker_mounts: Annotated[
        str | None,
        typer.Option(help="Docker mode: more volumes for the container, comma-separated host:container[:ro|rw] (the "
                     "model folder is always mounted read-only at its own path)."),
    ] = None,
    triton_docker_labels: Annotated[
        str | None, typer.Option(help="Docker mode: labels for the container, comma-separated key=value.")
    ] = None,
    triton_gpus: Annotated[
        str,
        typer.Option(help="Docker mode: the GPUs the container gets: auto (all, where the host has NVIDIA GPUs), "
                     "all, none, or comma-separated GPU ids or UUIDs."),
    ] = "auto",
    export_results: Annotated[
        bool, typer.Option("--export/--no-export", help="Write CSV files (and analysis.json) to --export-path.")
    ] = False,
    export_path: Annotated[Path, typer.Option("--export-path", "-e", help="Folder for the exported CSV files.")] = Path(
        "results"
    ),
    concurrent: Annotated[
        bool,
        typer.Option("--concurrent", "--run-config-profile-models-concurrently-enable",
                     help="Load the models together and measure them at the same time, each with its own "
                     "perf_analyzer over the same windows: does each hold its constraints while they share the "
                     "server? With config variants, every combination of one variant per model. (Model "
                     "Analyzer's concurrent mode; listed loads only, not a search.)"),
    ] = False,
    resume: Annotated[
        bool,
        typer.Option(help="Continue the unfinished run whose analysis.json is in --export-path (stopped or killed): "
                     "keep every point it measured, measure the rest. Refused, saying why, for another analysis."),
    ] = False,
    triton_url: Annotated[
        str | None,
        typer.Option(help="Profile an already running server at this HTTP host:port instead of starting one."),
    ] = None,
    triton_metrics_url: Annotated[
        str | None,
        typer.Option(help="Metrics URL of the --triton-url server (default: http://host:<http port + 2>/metrics)."),
    ] = None,
    triton_grpc_url: Annotated[
        str | None,
        typer.Option(help="gRPC host:port of the --triton-url server (default: host:<http port + 1>)."),
    ] = None,
    triton_server_path: Annotated[
        Path | None, typer.Option(help="tritonserver binary to start (default: on PATH, else nvidia-pytriton's).")
    ] = None,
    triton_http_port: Annotated[int, typer.Option(help="HTTP port of the started server (0: any free).")] = 0,
    triton_grpc_port: Annotated[int, typer.Option(help="gRPC port of the started server (0: any free).")] = 0,
    triton_metrics_port: Annotated[int, typer.Option(help="Metrics port of the started server (0: any free).")] = 0,
    prometheus_url: Annotated[
        str | None,
        typer.Option(help="Prometheus scraping dcgm-exporter, for Max Memory Utilization (empty without it)."),
    ] = None,
    perf_analyzer_path: Annotated[
        Path | None, typer.Option(help="perf_analyzer binary (default: on PATH, else next to this Python).")
    ] = None,
    *,
    measurement: MeasurementSettings,
    objective: Objective,
    constraints: Constraints,
) -> None:
    """Measure each model at every batch x load point (concurrency or request rate), and the server alone
    (baseline)."""
    load = parse_load(concurrency, max_concurrency, request_rate, min_request_rate, max_request_rate)
    config_search = parse_config_search(instance_counts, max_batch_sizes, dynamic_batching)
    names = [n.strip() for n in model_names.split(",") if n.strip()]
    inputs, own_inputs = parse_inputs(shape, input_data, string_length, shared_memory, names)
    check_input_data_file(input_data)
    bls = [n.strip() for n in bls_composing_models.split(",") if n.strip()] if bls_composing_models else None
    targets = model_targets(names, config_search, own_inputs, model_settings, bls)
    for target in targets:
        check_input_data_file(target.inputs.data if target.inputs else None)
    try:
        spec = SweepSpec(
            models=targets,
            inputs=inputs,
            batch_sizes=parse_int_list("--batch", batch),
            **load.spec_fields(),
            measurement=measurement,
            objective=objective,
            constraints=constraints,
            profile_models_concurrently=concurrent,
        )
    except ValidationError as exc:
        raise fail(f"invalid options: {explain(exc)}") from None
    if model_folder is None and triton_url is None:
        raise fail("give --model-folder (a Triton model repository) or --triton-url of a running server.")
    if model_folder is not None and triton_url is None:
        missing = [m for m in spec.model_names if not (model_folder / m).is_dir()]
        if missing:
            raise fail(
                f"model {missing[0]!r} is not in {model_folder} (no folder {model_folder / missing[0]}); "
                "check --model-names and --model-folder."
            )
        composing = [c for m in spec.model_names for c in spec.bls_composing_models(m)]
        if missing := [c for c in composing if not (model_folder / c).is_dir()]:
            raise fail(
                f"BLS composing model {missing[0]!r} is not in {model_folder} (no folder {model_folder / missing[0]});"
                " check --bls-composing-models."
            )
    if export_results:
        # Found out now, not after the sweep: the results (and the server's log) go there.
        try:
            export_path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise fail(
                f"--export-path {export_path}: cannot create it ({exc.strerror}); choose a writable folder."
            ) from None
        if not os.access(export_path, os.W_OK):
            raise fail(f"--export-path {export_path} is not writable; choose a writable folder.")
    try:
        perf_binary = find_perf_analyzer(perf_analyzer_path)
    except PerfAnalyzerError as exc:
        raise fail(str(exc)) from None

    mode = launch_mode(triton_launch_mode, triton_url, os.environ.get(LAUNCH_MODE_ENV))
    version = triton_version or DEFAULT_TRITON_VERSION
    docker_launch = None
    if mode == LaunchMode.DOCKER:
        docker_launch = DockerLaunch(
            image=image_for(version, triton_docker_image),
            shm_size=triton_docker_shm_size,
            gpus=triton_gpus,
            mounts=tuple(m.strip() for m in (triton_docker_mounts or "").split(",") if m.strip()),
            labels=parse_labels(triton_docker_labels),
        )
    result = AnalysisResult(triton_version=version, spec=spec_record(spec))
    if resume:
        result = resumed_result(export_path if export_results else None, spec, version)
    server: StartedTriton | None = None
    control: TritonControl | None = None
    stop_on_sigterm()
    try:
        if mode != LaunchMode.REMOTE:
            assert model_folder is not None
            # Kept with the results when exporting; otherwise out of the user's working folder.
            log_path = (export_path if export_results else Path(tempfile.gettempdir())) / "triton-server.log"
            ports = {"http_port": triton_http_port, "grpc_port": triton_grpc_port, "metrics_port": triton_metrics_port,
                     "metrics_interval_ms": measurement.metrics_interval_ms}  # fmt: skip
            if docker_launch is not None:
                server = TritonContainer(docker_launch, model_folder, log_path, **ports)
                console.print(f"Starting Triton ({docker_launch.image}, in a container) on {model_folder} ...",
                              highlight=False)  # fmt: skip
            else:
                triton = find_local_triton(triton_server_path)
                server = TritonServerProcess(triton, model_folder, log_path, **ports)
                console.print(f"Starting Triton ({triton.binary.name}) on {model_folder} ...", highlight=False)
            endpoints = server.start()
            if isinstance(server, TritonContainer) and server.removed_leftovers:
                console.print(f"note: removed {len(server.removed_leftovers)} Triton container(s) left by a run that "
                              f"was killed: {', '.join(server.removed_leftovers)}", highlight=False)  # fmt: skip
        else:
            assert triton_url is not None
            endpoints = TritonEndpoints.from_url(triton_url, triton_metrics_url, triton_grpc_url)
        control = TritonControl(endpoints.http)
        control.wait_ready()
        if triton_version is not None or isinstance(server, TritonContainer):
            image = server.image_versions() if isinstance(server, TritonContainer) else ("", "")
            if note := version_mismatch(version, control.server_version(), *image):
                result.notes.append(note)
                console.print(f"[yellow]note:[/] {note}", highlight=False)
        run_profile(spec, endpoints, control, result, perf_binary, prometheus_url, model_folder,
                    export_path if export_results else None, owns_server=server is not None)  # fmt: skip
    except KeyboardInterrupt:
        result.interrupted = True
        console.print("[yellow]Interrupted: stopping; the points measured so far are kept.[/]")
    except (TritonNotFound, TritonStartError, TritonUnreachable, ValueError) as exc:
        raise fail(str(exc)) from None
    finally:
        # Close our HTTP connection first: a stopping Triton waits for open connections to go away
        # (--exit-timeout-secs, 30 s), so an open one made every stop end in SIGKILL after 15 s.
        if control is not None:
            control.close()
        if server is not None:
            server.stop()
    finish(result, export_path if export_results else None, model_folder)


def stop_on_sigterm() -> None:
    """SIGTERM (`docker stop`, a job scheduler) stops the run as Ctrl-C does: the points so far are kept and the
    server this run started is stopped, rather than the process dying on the spot."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    with contextlib.suppress(ValueError):  # not the main thread (a test calling the CLI in a thread)
        signal.signal(signal.SIGTERM, interrupt)


def resumed_result(export_path: Path | None, spec: SweepSpec, triton_version: str) -> AnalysisResult:
    """The unfinished result --resume continues, or a sentence saying why there is none to continue."""
    if export_path is None:
        raise fail("--resume continues the run exported to --export-path: give --export (and its --export-path).")
    saved_at = export_path / RESULT_JSON
    try:
        saved = AnalysisResult.model_validate_json(saved_at.read_text())
    except OSError as exc:
        raise fail(f"--resume: cannot read {saved_at} ({exc.strerror or exc}); is --export-path the run's?") from None
    except ValidationError:
        raise fail(f"--resume: {saved_at} is not an analysis.json this tool wrote; run without --resume.") from None
    refusal = resume_refusal(saved, spec, triton_version)
    if refusal is not None:
        raise fail(f"--resume: {saved_at}: {refusal}.")
    saved.interrupted, saved.finished_at = False, None
    kept = len(saved.points)
    console.print(f"Resuming {saved_at}: the {kept} point{'s' if kept != 1 else ''} measured before are kept; "
                  "measuring the rest.", highlight=False)  # fmt: skip
    return saved


def run_profile(
    spec: SweepSpec,
    endpoints: TritonEndpoints,
    control: TritonControl,
    result: AnalysisResult,
    perf_binary: Path,
    prometheus_url: str | None,
    model_folder: Path | None,
    export_path: Path | None,
    *,
    owns_server: bool,
) -> None:
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("starting", total=None)

        def record(event: EngineEvent, partial: AnalysisResult) -> None:
            where = (
                f"{event.model} {event.point.where}"
                if event.point
                else event.model
            )
            text = {
                EventKind.BASELINE: "baseline: server with no model loaded",
                EventKind.LOADING: f"loading {event.model}",
                EventKind.POINT: f"measuring {where}",
                EventKind.POINT_MEASURED: f"measured {where}",
                EventKind.POINT_FAILED: f"[red]failed[/] {where}",
                EventKind.LOAD_FAILED: f"[red]{event.model} failed to load[/]",
                EventKind.REFUSED: f"[red]{event.model} refused[/]",
                EventKind.UNLOADED: f"unloaded {event.model}",
            }.get(event.kind, event.kind.value)
            progress.update(task, description=text, completed=event.done, total=event.total)
            if event.kind == EventKind.POINT_FAILED:  # load failures are summed up once, at the end
                progress.console.print(f"[red]{where}:[/] {event.message}", highlight=False)
            # The files are whole after every point, so Ctrl-C loses nothing.
            recorded = event.kind in (EventKind.POINT_MEASURED, EventKind.POINT_FAILED, EventKind.LOAD_FAILED,
                                      EventKind.REFUSED)  # fmt: skip
            if recorded and export_path is not None:
                export(partial, export_path)

        def run_point(point: Point, settings: MeasurementSettings) -> PerfMeasurement:
            return measure_point(point, settings, endpoints.grpc, endpoints.http, perf_binary,
                                 budgets=search_budgets(spec),
                                 input_args=spec.inputs_for(point.model).perf_analyzer_args())  # fmt: skip

        placement = local_placement(socket.gethostname(), endpoints.http.rpartition(":")[0])

        SweepEngine(
            spec,
            control,
            endpoints.metrics_url,
            run_point,
            record,
            memory_utilization=DcgmMemoryUtilization(prometheus_url) if prometheus_url else None,
            owns_server=owns_server,
            model_config_path=lambda m: str((model_folder / m / "config.pbtxt").resolve()) if model_folder else "",
            where_ran=lambda: placement,
            read_input_data=lambda path: Path(path).read_text(),
            run_together=lambda points, settings: measure_together(
                points, settings, endpoints.grpc, endpoints.http, perf_binary,
                input_args_of=lambda model: spec.inputs_for(model).perf_analyzer_args(),
            ),
        ).run(result)


def print_best(result: AnalysisResult) -> None:
    """The answer, last: the point to deploy per model and overall, and why (on stdout, after the table)."""
    best = result.best
    if best is None or best.overall is None:
        return
    out = Console(soft_wrap=True)

    def config(b: BestPoint) -> str:
        """The model, and the config variant it won in (what it changes) when there was a config search."""
        outcome = result.outcome(b.variant, b.triton_version) if b.variant else None
        model = f"{b.model} as {b.variant} ({outcome.changes})" if outcome else b.model
        return f"{model} on Triton {b.triton_version}" if b.triton_version else model

    for b in best.per_version if len(best.per_version) > 1 else []:
        mark = "" if b.satisfies_constraints else " [yellow](none satisfies the constraints)[/]"
        out.print(f"Best on Triton {b.triton_version}: {config(b)}, {b.where}{mark}", highlight=False)

    if len(best.per_model) > 1:
        for b in best.per_model:
            mark = "" if b.satisfies_constraints else " [yellow](none satisfies the constraints)[/]"
            out.print(f"Best for {b.model}: {config(b)}, {b.where}{mark}: {b.why}", highlight=False)
    for boundary in best.boundaries:  # with a latency budget: where it falls at each batch size searched
        out.print(f"Boundary: {boundary.sentence()}", highlight=False)
    for outcome in result.models:  # a pipeline's config search: what each step of its walk tried, and why
        if outcome.reason and outcome.model:
            out.print(f"Walk: {outcome.name} ({outcome.changes or 'not measured'}): {outcome.reason}", highlight=False)
    for b in best.per_model or [best.overall]:  # an ensemble: where its best point's time went, step by step
        point = next((p for p in result.points if p.key == b.key), None)
        if point is not None and point.steps and (slowest := bottleneck(point.steps)) is not None:
            others = "; ".join(s.sentence() for s in point.steps if s is not slowest)
            out.print(f"Steps: {b.model} {b.where}: bottleneck {slowest.sentence()}" + (f"; then {others}" if others
                      else ""), highlight=False)  # fmt: skip
    together = best.together
    if together is not None:
        label = "Best together" if together.satisfies_constraints else "[yellow]Together, closest[/]"
        out.print(f"{label}: {together.where}: {together.why}", highlight=False)
    overall = best.overall
    label = "Best" if overall.satisfies_constraints else "[yellow]No point satisfies the constraints[/]; closest"
    out.print(
        f"{label}: {config(overall)} {overall.where} "
        f"({best.objective.value}): {overall.why}",
        highlight=False,
    )


def finish(result: AnalysisResult, export_path: Path | None, model_folder: Path | None = None) -> None:
    """Print the table and notes, write the files, and exit non-zero if anything failed."""
    out = Console()
    if result.points:
        table = model_table(result)
        if not out.is_terminal:
            # Piped or redirected, stdout is 80 columns wide: give the table its natural width rather than
            # cutting model names and numbers to "add_…".
            natural = out.measure(table, options=out.options.update_width(1000)).maximum
            out = Console(width=max(out.width, natural))
        out.print(table)
    for outcome in result.models:
        if outcome.status == ModelStatus.LOAD_FAILED:
            console.print(f"[red]{outcome.name} failed to load:[/] {outcome.error}", highlight=False)
        elif outcome.status == ModelStatus.REFUSED:
            console.print(f"[red]refused[/] {outcome.error}", highlight=False)
        # One line per batch size and reason: a search that stops early leaves many steps out for one reason.
        grouped: dict[tuple[int, str], list[Load]] = {}
        for skipped in outcome.skipped:
            grouped.setdefault((skipped.point.batch_size, skipped.reason), []).append(skipped.point.load)
        for (batch, reason), steps in grouped.items():
            where = ", ".join(load.key_part for load in steps)
            console.print(f"skipped {outcome.name} b{batch} {where}: {reason}", highlight=False)
    for note in result.notes:
        console.print(f"note: {note}", highlight=False)
    print_best(result)
    undelivered = [(p, why) for p in result.points if (why := not_delivered_sentence(p))]
    if undelivered:
        first, why = undelivered[0]
        console.print(
            f"note: {len(undelivered)} of {len(result.points)} points did not get the rate they offered, so they are "
            f"no measurement at that rate (Delivered: No in the CSV); first, {first.variant_name} {first.where}: {why}",
            highlight=False,
        )
    unconverged = [p for p in result.points if p.perf is not None and p.perf.converged is False]
    if unconverged:
        console.print(
            f"note: {len(unconverged)} of {len(result.points)} points did not reach the precision asked for "
            "before their cap; their numbers stand, with the wider interval shown (first: "
            f"{unconverged[0].point.key}, {unconverged[0].perf and unconverged[0].perf.convergence}). "
            "For tighter numbers raise --max-point-seconds or --max-trials, or measure on a quieter machine.",
            highlight=False,
        )
    if export_path is not None:
        export(result, export_path)
        for folder in export_winners(result, export_path, model_folder):
            console.print(f"The winning config, ready to deploy: {folder}/config.pbtxt", highlight=False)
        console.print(f"Results written to {export_path}/", highlight=False)
    failed = [m for m in result.models if m.status in NOT_MEASURABLE]
    failed_points = [p for p in result.points if p.status == PointStatus.FAILED]
    if result.interrupted:
        raise typer.Exit(code=130)
    if failed or failed_points:
        raise typer.Exit(code=1)


@app.command()
def report(
    analysis: Annotated[
        Path | None,
        typer.Argument(help="A finished analysis's analysis.json, or the --export-path folder that holds it."),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Render a ModelAnalysis in the cluster instead (from its status).")
    ] = None,
    namespace: Annotated[str, typer.Option("--namespace", "-n", help="Its namespace (with --name).")] = "default",
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Where to write the page ('-': stdout). Default: report.html beside "
                     "analysis.json, or NAME-report.html here with --name."),
    ] = None,
) -> None:
    """Write the HTML report (plots, best configurations, every point) of a finished analysis."""
    from modelanalysis.core.html_report import REPORT_HTML, render_html

    if (analysis is None) == (name is None):
        raise fail("give an analysis.json (or its folder), or --name of a ModelAnalysis in the cluster.")
    if name is not None:
        result, title = cli_cluster.analysis_from_cluster(name, namespace), name
        default = Path(f"{name}-report.html")
    else:
        assert analysis is not None
        path = analysis / RESULT_JSON if analysis.is_dir() else analysis
        try:
            result = AnalysisResult.model_validate_json(path.read_text())
        except OSError as exc:
            raise fail(f"cannot read {path}: {exc.strerror}.") from None
        except ValidationError as exc:
            raise fail(f"{path} is not an analysis.json that model-analyzer wrote: {explain(exc)}.") from None
        title, default = None, path.parent / REPORT_HTML
    page = render_html(result, title=title)
    if output is not None and str(output) == "-":
        sys.stdout.write(page)
        return
    target = output or default
    try:
        write_atomic(target, page)
    except OSError as exc:
        raise fail(f"cannot write {target}: {exc.strerror}.") from None
    console.print(f"Report written to {target} ({len(page.encode()) // 1024} KiB)", highlight=False)


def _version_callback(value: bool) -> None:
    if value:
        print(__version__)
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version_callback, is_eager=True)] = False,
) -> None:
    """Profile models on NVIDIA Triton Inference Server."""


cli_cluster.register(app)


def main() -> None:
    # The original tool had no subcommand: `model-analyzer --batch 1,4 --model-names ...` means `profile`.
    argv = sys.argv[1:]
    if argv and argv[0].startswith("-") and argv[0] not in SUBCOMMANDS:
        argv.insert(0, "profile")
    sys.argv[1:] = with_config_file(argv)
    app()


def with_config_file(argv: list[str]) -> list[str]:
    """`profile -f config.yaml ...` (Model Analyzer's profile YAML): the file's flags go first, so that the command
    line's own override them; a model's own settings travel in --model-settings. A key this tool cannot honour
    ends the run here, in one sentence, before anything starts."""
    if not argv or argv[0] not in CONFIG_FILE_COMMANDS:
        return argv
    rest, path = take_config_file(argv[1:])
    if path is None:
        return argv
    try:
        document = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise SystemExit(config_error(f"{path}: cannot read it ({exc.strerror or exc})")) from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise SystemExit(config_error(f"{path} is not YAML{at}")) from None
    try:
        config = read_ma_config(document)
    except MaConfigError as exc:
        raise SystemExit(config_error(f"{path}: {exc}")) from None
    flags, notes = (manifest_flags(config.argv) if argv[0] == "manifest" else (config.argv, []))
    for note in [*config.notes, *notes]:
        console.print(f"note: {note}", highlight=False)
    settings = ["--model-settings", json.dumps(config.models)] if config.models else []
    return [argv[0], *flags, *settings, *rest]


# Flags of a local run that a manifest has no use for (the operator starts Triton and perf_analyzer itself).
LOCAL_RUN_FLAGS = ("--export-path", "--triton-url", "--triton-grpc-url", "--triton-metrics-url",
                   "--triton-server-path", "--perf-analyzer-path")  # fmt: skip


def manifest_flags(flags: list[str]) -> tuple[list[str], list[str]]:
    """A config file's flags for `manifest`: model_repository as --model-repository when it names a claim or a
    bucket (a local folder means nothing to the operator: give --model-repository), local-run settings noted as
    having no effect."""
    kept: list[str] = []
    notes: list[str] = []
    pairs = iter(flags)
    for flag in pairs:
        if flag == "--export":
            continue
        if flag == "--model-folder":
            folder = next(pairs)
            if folder.startswith(("pvc://", "s3://", "gs://", "as://")):
                kept += ["--model-repository", folder]
            else:
                notes.append(f"config file: model_repository {folder} is a local folder; a manifest needs "
                             "--model-repository pvc://CLAIM (or s3://, gs://)")  # fmt: skip
        elif flag in LOCAL_RUN_FLAGS:
            notes.append(f"config file: {flag.removeprefix('--')} {next(pairs)} has no effect in a manifest")
        else:
            kept.append(flag)
    return kept, notes


def take_config_file(args: list[str]) -> tuple[list[str], str | None]:
    """The arguments without -f/--config-file, and its value."""
    rest, path, i = [], None, 0
    while i < len(args):
        arg = args[i]
        if arg in ("-f", "--config-file") and i + 1 < len(args):
            path, i = args[i + 1], i + 2
            continue
        if arg.startswith("--config-file="):
            path = arg.partition("=")[2]
        else:
            rest.append(arg)
        i += 1
    return rest, path


def config_error(message: str) -> int:
    console.print(f"[bold red]error:[/] {message}", highlight=False)
    return 1

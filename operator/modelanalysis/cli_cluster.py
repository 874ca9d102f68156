"""CLI commands that work with the operator: write a ModelAnalysis manifest, read an analysis's results and
report. (The two commands the operator's Jobs run, perf-point and copy-results, are in job_commands.py.)"""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.table import Table

from modelanalysis.cli_common import (
    CONCURRENCY_HELP,
    CONFIG_FILE_HELP,
    CONFIG_SEARCH_HELP,
    INPUT_HELP,
    MAX_CONCURRENCY_HELP,
    MAX_RATE_HELP,
    MIN_RATE_HELP,
    MODEL_SETTINGS_HELP,
    REQUEST_RATE_HELP,
    LoadFlags,
    explain,
    fail,
    model_targets,
    parse_config_search,
    parse_inputs,
    parse_int_list,
    parse_load,
    with_measurement_options,
    with_objective_options,
)
from modelanalysis.core.inputs import InputSettings, SharedMemory
from modelanalysis.core.load import Load
from modelanalysis.core.parts import join_parts
from modelanalysis.core.results import AnalysisResult
from modelanalysis.core.spec import ConfigSearch, Constraints, MeasurementSettings, Objective
from modelanalysis.kube.conditions import analysis_result
from modelanalysis.kube.names import results_configmap_name
from modelanalysis.kube.resource import (
    API_VERSION,
    GROUP,
    KIND,
    PLURAL,
    VERSION,
    ModelAnalysisSpec,
    ModelAnalysisStatus,
)


def parse_pvc_url(flag: str, url: str) -> dict[str, str]:
    """pvc://CLAIM[/SUB/PATH] -> {claimName, subPath}."""
    rest = url.removeprefix("pvc://")
    claim, _, sub_path = rest.partition("/")
    if not url.startswith("pvc://") or not claim:
        raise fail(f"{flag} {url!r}: expected pvc://CLAIM[/PATH] (a PersistentVolumeClaim in the namespace).")
    location = {"claimName": claim}
    if sub_path.strip("/"):
        location["subPath"] = sub_path.strip("/")
    return location


def read_results(core: Any, name: str, namespace: str) -> dict[str, str]:
    """An analysis's result files from its results ConfigMaps (`core`: a kubernetes CoreV1Api), each file whole
    (parts joined)."""
    from kubernetes.client.exceptions import ApiException

    data: dict[str, str] = dict(core.read_namespaced_config_map(results_configmap_name(name), namespace).data or {})
    index = 1
    while True:
        try:
            more = core.read_namespaced_config_map(results_configmap_name(name, index), namespace)
        except ApiException as exc:
            if exc.status == 404:
                return join_parts(data)
            raise
        data.update(more.data or {})
        index += 1


MANIFEST_INPUT_DATA_HELP = (
    "What perf_analyzer sends: random (default), zero, or a JSON file in its input-data format, as a path inside "
    "the model repository claim (the load-generator Job mounts it read-only)."
)


def _wire(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def build_manifest(
    name: str,
    namespace: str | None,
    model_repository: str,
    results: str | None,
    credentials_secret: str | None,
    models: list[str],
    batch_sizes: list[int],
    load: LoadFlags,
    triton_version: str | None,
    triton_image: str | None,
    measurement: MeasurementSettings,
    objective: Objective = Objective.MAXIMIZE_THROUGHPUT,
    constraints: Constraints | None = None,
    config_search: ConfigSearch | None = None,
    triton_versions: list[str] | None = None,
    max_trials: int | None = None,
    inputs: tuple[InputSettings, dict[str, InputSettings]] | None = None,
    model_settings: str | None = None,
) -> dict[str, Any]:
    repo: dict[str, Any]
    if model_repository.startswith("pvc://"):
        repo = {"pvc": parse_pvc_url("--model-repository", model_repository)}
    elif model_repository.startswith(("s3://", "gs://", "as://")):
        repo = {"uri": model_repository}
    else:
        raise fail(f"--model-repository {model_repository!r}: give pvc://CLAIM[/SUBPATH], s3://... or gs://...")
    if credentials_secret:
        repo["credentialsSecret"] = credentials_secret
    general, own = inputs or (InputSettings(), {})
    targets = model_targets(models, config_search, own, model_settings)
    spec: dict[str, Any] = {
        "models": [_wire(t) for t in targets],
        **({"inputs": _wire(general)} if general.given else {}),
        "batchSizes": batch_sizes,
        **({"concurrency": load.concurrency} if load.concurrency is not None else {}),
        **({"concurrencySearch": _wire(load.concurrency_search)} if load.concurrency_search is not None else {}),
        **(
            {"requestRate": [Load.request_rate(r).value for r in load.request_rate]}
            if load.request_rate is not None
            else {}
        ),
        **({"requestRateSearch": _wire(load.request_rate_search)} if load.request_rate_search is not None else {}),
        "modelRepository": repo,
    }
    triton = {
        k: v for k, v in {"version": triton_version, "image": triton_image, "versions": triton_versions}.items() if v
    }
    if triton:
        spec["triton"] = triton
    if max_trials is not None:
        spec["parallelism"] = {"maxTrials": max_trials}
    non_default = measurement.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    if non_default:
        spec["measurement"] = non_default
    if objective != Objective.MAXIMIZE_THROUGHPUT:
        spec["objective"] = objective.value
    if constraints is not None and constraints.any:
        spec["constraints"] = constraints.model_dump(mode="json", by_alias=True, exclude_none=True)
    if results:
        spec["results"] = {"pvc": parse_pvc_url("--results", results)}
    try:
        ModelAnalysisSpec.model_validate(spec)
    except ValidationError as exc:
        raise fail(f"spec.{explain(exc)}") from None
    metadata: dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec}


def read_analysis(name: str, namespace: str) -> tuple[Any, dict[str, Any]]:
    """The API client of the user's kubeconfig and the ModelAnalysis `name`, or a clear failure."""
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    except (config.ConfigException, OSError) as exc:
        raise fail(f"cannot read a kubeconfig ({exc}); set KUBECONFIG or run inside the cluster.") from None
    api = client.ApiClient()
    try:
        analysis: dict[str, Any] = dict(
            client.CustomObjectsApi(api).get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)  # type: ignore[call-overload]
        )
    except ApiException as exc:
        if exc.status == 404:
            raise fail(f"no ModelAnalysis {name!r} in namespace {namespace}.") from None
        raise fail(f"the API server refused: {exc.reason}") from None
    except HTTPError as exc:  # connection refused, TLS, timeouts: urllib3 gives up after its retries
        raise fail(f"cannot reach the API server of your kubeconfig ({exc}); check KUBECONFIG.") from None
    return api, analysis


def result_from_body(analysis: dict[str, Any]) -> AnalysisResult:
    """The core's result, rebuilt from a ModelAnalysis's status as the operator does when writing results."""
    status = ModelAnalysisStatus.model_validate(analysis.get("status") or {})
    spec = analysis.get("spec") or {}
    image = status.triton_image or ""
    version = (spec.get("triton") or {}).get("version") or (image.rpartition(":")[2] if ":" in image else image)
    return analysis_result(status, version)


def analysis_from_cluster(name: str, namespace: str) -> AnalysisResult:
    """A ModelAnalysis's results so far, from its status (points are recorded there as they are measured)."""
    _, analysis = read_analysis(name, namespace)
    status = analysis.get("status") or {}
    if not status.get("points"):
        raise fail(f"{name} has no measured points yet (phase {status.get('phase', 'Pending')}).")
    return result_from_body(analysis)


def write_winning_configs(status: dict[str, Any], folder: Path) -> None:
    """Each model's winning config variant from status, as <folder>/<model>/config.pbtxt (said on stderr)."""
    from modelanalysis.adapters.model_repository import NoProtobuf, write_deployable_model

    together = status.get("bestTogether") or {}
    if together.get("configs"):  # models measured together: the best combination's configs go together
        why = f"best together: {' + '.join(together.get('variants') or [])}"
        chosen = [(model, config, why) for model, config in together["configs"].items()]
    else:
        winners = [b for b in status.get("bestPerModel") or [] if b.get("config")]
        if not winners:
            raise fail("no model won in a config variant (no config search, or nothing measured): nothing to write.")
        # A pipeline's winner comes with each composing model's config, written beside the pipeline's.
        chosen = [(model, config, f"{best.get('variant')}: {best.get('variantChanges')}") for best in winners
                  for model, config in {best["model"]: best["config"], **(best.get("composingConfigs") or {})}.items()]
    for model, config, why in chosen:
        try:
            written = write_deployable_model(config, folder / model, None)
        except (NoProtobuf, OSError) as exc:
            raise fail(f"cannot write the winning config of {model}: {exc}") from None
        print(f"wrote {written / 'config.pbtxt'} ({why})", file=sys.stderr)


def register(app: typer.Typer) -> None:
    @app.command()
    @with_measurement_options
    @with_objective_options
    def manifest(
        name: Annotated[str, typer.Option(help="Name of the ModelAnalysis.")],
        model_repository: Annotated[str, typer.Option(help="pvc://CLAIM[/SUBPATH], s3://... or gs://...")],
        model_names: Annotated[str, typer.Option("--model-names", "-m", help="Comma-separated model names.")],
        namespace: Annotated[str | None, typer.Option(help="Namespace to put in the manifest.")] = None,
        results: Annotated[
            str | None, typer.Option(help="pvc://CLAIM[/PATH] for the CSV files (default: a ConfigMap).")
        ] = None,
        credentials_secret: Annotated[
            str | None, typer.Option(help="Secret with the credentials for an s3:// or gs:// repository.")
        ] = None,
        batch: Annotated[str, typer.Option("--batch", "-b", help="Comma-separated batch sizes.")] = "1",
        concurrency: Annotated[str | None, typer.Option("--concurrency", "-c", help=CONCURRENCY_HELP)] = None,
        max_concurrency: Annotated[int | None, typer.Option(help=MAX_CONCURRENCY_HELP)] = None,
        request_rate: Annotated[str | None, typer.Option("--request-rate", help=REQUEST_RATE_HELP)] = None,
        min_request_rate: Annotated[float | None, typer.Option(help=MIN_RATE_HELP)] = None,
        max_request_rate: Annotated[float | None, typer.Option(help=MAX_RATE_HELP)] = None,
        shape: Annotated[list[str] | None, typer.Option("--shape", help=INPUT_HELP["shape"])] = None,
        input_data: Annotated[str | None, typer.Option("--input-data", help=MANIFEST_INPUT_DATA_HELP)] = None,
        string_length: Annotated[int | None, typer.Option(help=INPUT_HELP["string_length"])] = None,
        shared_memory: Annotated[SharedMemory | None, typer.Option(help=INPUT_HELP["shared_memory"])] = None,
        config_file: Annotated[Path | None, typer.Option("--config-file", "-f", help=CONFIG_FILE_HELP)] = None,
        model_settings: Annotated[str | None, typer.Option(hidden=True, help=MODEL_SETTINGS_HELP)] = None,
        instance_counts: Annotated[str | None, typer.Option(help=CONFIG_SEARCH_HELP["instance_counts"])] = None,
        max_batch_sizes: Annotated[str | None, typer.Option(help=CONFIG_SEARCH_HELP["max_batch_sizes"])] = None,
        dynamic_batching: Annotated[str | None, typer.Option(help=CONFIG_SEARCH_HELP["dynamic_batching"])] = None,
        triton_version: Annotated[
            str | None, typer.Option(help="Triton release (image nvcr.io/nvidia/tritonserver:<version>).")
        ] = None,
        triton_image: Annotated[str | None, typer.Option(help="Full Triton image; overrides --triton-version.")] = None,
        triton_versions: Annotated[
            str | None,
            typer.Option(help="Comma-separated Triton releases to compare, each on a Triton pod of its own "
                         "(instead of --triton-version)."),
        ] = None,
        parallel_trials: Annotated[
            int | None,
            typer.Option(help="spec.parallelism.maxTrials: most Triton pods the analysis runs at once; with more "
                         "than 1, every (version, variant) is a trial of its own, run side by side on as many GPU "
                         "nodes as fit. (--max-trials is Model Analyzer's: measurement windows per point.)"),
        ] = None,
        *,
        measurement: MeasurementSettings,
        objective: Objective,
        constraints: Constraints,
    ) -> None:
        """Print a ModelAnalysis manifest, for `kubectl apply -f -` or a GitOps repository."""
        load = parse_load(concurrency, max_concurrency, request_rate, min_request_rate, max_request_rate)
        config_search = parse_config_search(instance_counts, max_batch_sizes, dynamic_batching)
        models = [m.strip() for m in model_names.split(",") if m.strip()]
        inputs = parse_inputs(shape, input_data, string_length, shared_memory, models)
        body = build_manifest(
            name,
            namespace,
            model_repository,
            results,
            credentials_secret,
            models,
            parse_int_list("--batch", batch),
            load,
            triton_version,
            triton_image,
            measurement,
            objective,
            constraints,
            config_search=config_search,
            triton_versions=[v.strip() for v in triton_versions.split(",") if v.strip()] if triton_versions else None,
            max_trials=parallel_trials,
            inputs=inputs,
            model_settings=model_settings,
        )
        sys.stdout.write(yaml.safe_dump(body, sort_keys=False))

    @app.command()
    def results(
        name: Annotated[str, typer.Argument(help="The ModelAnalysis name.")],
        namespace: Annotated[str, typer.Option("--namespace", "-n", help="Its namespace.")] = "default",
        output_format: Annotated[str, typer.Option("--format", help="table, csv or html.")] = "table",
        output_model_repository: Annotated[
            Path | None,
            typer.Option(help="Also write each model's winning config variant (status.bestPerModel[].config) as "
                         "DIR/<model>/config.pbtxt, as Model Analyzer's output_model_repository; copy the model's "
                         "version folders beside it to deploy it."),
        ] = None,
    ) -> None:
        """Fetch a finished analysis's results from the cluster (its <name>-results ConfigMap)."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        from modelanalysis.core.html_report import REPORT_HTML, render_html
        from modelanalysis.core.report import INFERENCE_CSV  # here, not at the top: it imports pandas

        if output_format not in ("table", "csv", "html"):
            raise fail(f"--format {output_format!r}: use table, csv or html.")
        api, analysis = read_analysis(name, namespace)
        status = analysis.get("status") or {}
        phase = status.get("phase", "Pending")
        if phase not in ("Succeeded", "Failed"):
            raise fail(
                f"{name} is still {phase} ({status.get('progress', '0/?')} points); try again when it has finished."
            )
        try:
            # The operator always writes the files to these ConfigMaps (<name>-results, then -2, -3, ... when
            # they do not fit in one), with or without a results claim.
            data = read_results(client.CoreV1Api(api), name, namespace)
        except (ApiException, HTTPError):
            if output_format == "html":  # the report can still be drawn from status
                data = {}
            else:
                raise fail(
                    f"{name} finished ({phase}: {status.get('message', '')}) but has no results ConfigMap."
                ) from None
        if output_model_repository is not None:
            write_winning_configs(status, output_model_repository)
        if output_format == "html":
            # Analyses from before the report was always written have none: rendered from status then.
            sys.stdout.write(data.get(REPORT_HTML) or render_html(result_from_body(analysis), title=name))
            return
        text = data.get(INFERENCE_CSV, "")
        if output_format == "csv":
            sys.stdout.write(text)
            return
        import pandas as pd

        frame = pd.read_csv(io.StringIO(text)) if text else pd.DataFrame()
        table = Table(title=f"{namespace}/{name}: {phase}. {status.get('message', '')}")
        columns = ["Model", "Batch", "Concurrency", "Throughput (infer/sec)", "p50 Latency (ms)", "p99 Latency (ms)",
                   "Max GPU Utilization (%)", "Max GPU Memory (MB)", "Max CPU Utilization (%)", "Status"]  # fmt: skip
        if "Model Config Path" in frame and any("_config_" in str(v) for v in frame["Model Config Path"]):
            columns.insert(1, "Model Config Path")  # a config search: which variant each row measured
        if "Triton Version" in frame and frame["Triton Version"].nunique() > 1:
            columns.insert(1, "Triton Version")  # several versions compared
        for column in columns:
            table.add_column(column)
        for _, row in frame.iterrows():
            table.add_row(*["" if pd.isna(row.get(c)) else str(row.get(c)) for c in columns])
        Console().print(table)
        best = status.get("best") or {}
        for per_version in status.get("bestPerVersion") or [] if len(status.get("bestPerVersion") or []) > 1 else []:
            Console(soft_wrap=True).print(f"Best on Triton {per_version.get('tritonVersion')}: "
                                          f"{per_version['summary']}", highlight=False)  # fmt: skip
        for boundary in status.get("boundaries") or []:
            Console(soft_wrap=True).print(f"Boundary: {boundary['summary']}", highlight=False)
        if best.get("summary"):
            Console(soft_wrap=True).print(f"Best: {best['summary']} ({best.get('why', '')})", highlight=False)

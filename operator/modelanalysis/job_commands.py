"""The two commands the operator's Jobs run inside the image: `model-analyzer perf-point` (one point, to
convergence) and `model-analyzer copy-results` (result files onto the results volume).

They live apart from the CLI so that a Job starts in about 0.4 s instead of 1.4 s: they import only what a
point needs (perf_analyzer's runner and the spec), not the CLI's Kubernetes client, tritonclient, pandas and
rich. A Job starts once per point, so this is paid at every point of every analysis.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from modelanalysis.adapters.files import (
    RESULTS_OWNER_FILE,
    set_aside_earlier_results,
    write_atomic,
    write_results_owner,
)
from modelanalysis.adapters.perf_analyzer import PerfAnalyzerError, measure_point, measure_together
from modelanalysis.core.budget import latency_budgets
from modelanalysis.core.inputs import InputSettings, parse_input_data
from modelanalysis.core.load import Load
from modelanalysis.core.parts import join_parts
from modelanalysis.core.perf import INPUTS_REFUSED_PREFIX, PerfMeasurement
from modelanalysis.core.spec import AtMost, Constraints, MeasurementSettings
from modelanalysis.core.sweep import Point

JOB_COMMANDS = ("perf-point", "copy-results")
# The kubelet keeps at most 4096 bytes of a termination message.
MAX_TERMINATION_MESSAGE = 3500


def _perf_point_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="model-analyzer perf-point",
        description="Measure one point to convergence with perf_analyzer (what the operator's load-generator "
        "Jobs run). Prints the measurement as JSON and writes it to --termination-log.",
    )
    parser.add_argument("--model", help="The model to measure (or --members, for several at once).")
    parser.add_argument(
        "--members", help="Models measured together (profileModelsConcurrently), as JSON: a list of {model, "
        "streaming, inputs}. The result is then a JSON list, a measurement or {\"error\": ...} each."
    )
    parser.add_argument("--batch", type=int, required=True)
    load = parser.add_mutually_exclusive_group(required=True)  # the point's load (core/load.py: CLI_FLAG)
    load.add_argument("--concurrency", type=int)
    load.add_argument("--request-rate", type=float)
    parser.add_argument("--grpc-url", required=True)
    parser.add_argument("--http-url", required=True)
    parser.add_argument("--measurement", default="{}", help="The analysis's measurement settings, as JSON.")
    parser.add_argument("--termination-log", type=Path)
    parser.add_argument(
        "--cpu-budget", type=float, help="Cores the Job was given (default: the CPUs this process may use)."
    )
    parser.add_argument(
        "--streaming", action="store_true", help="The model is decoupled: stream over gRPC and read perf_analyzer's "
        "per-request export for time to first token, inter-token latency and tokens per second."
    )
    parser.add_argument("--inputs", help="What perf_analyzer sends the model (spec.inputs, merged), as JSON.")
    parser.add_argument(
        "--p99-budget-ms", type=float, help="A load search's p99 budget: measure until p99's interval is on "
        "one side of it (within the caps)."
    )
    parser.add_argument("--ttft-budget-ms", type=float, help="Likewise for a streaming model's p99 TTFT budget.")
    parser.add_argument("--itl-budget-ms", type=float, help="Likewise for a streaming model's p99 ITL budget.")
    return parser


def budget_constraints(args: argparse.Namespace) -> Constraints:
    given = {"p99_latency_ms": args.p99_budget_ms, "ttft_p99_ms": args.ttft_budget_ms, "itl_p99_ms": args.itl_budget_ms}
    return Constraints(**{name: AtMost(max=ms) for name, ms in given.items() if ms is not None})


def perf_point(argv: Sequence[str]) -> int:
    args = _perf_point_parser().parse_args(argv)
    try:
        settings = MeasurementSettings.model_validate_json(args.measurement)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        print(f"error: --measurement: {where}: {first['msg']}", file=sys.stderr)
        return 2
    try:
        inputs = InputSettings.model_validate_json(args.inputs) if args.inputs else InputSettings()
    except ValidationError as exc:
        print(f"error: --inputs: {exc.errors()[0]['msg']}", file=sys.stderr)
        return 2
    if inputs.data_file is not None:  # a file perf_analyzer would fail on: refuse the model, in one sentence
        try:
            parse_input_data(Path(inputs.data_file).read_text(), inputs.data_file)
        except (OSError, ValueError) as exc:
            why = f"cannot read input data {inputs.data_file} ({exc})" if isinstance(exc, OSError) else str(exc)
            message = f"{INPUTS_REFUSED_PREFIX}{args.model}: {why}"[:MAX_TERMINATION_MESSAGE]
            if args.termination_log is not None:
                args.termination_log.write_text(message)
            print(message, file=sys.stderr)
            return 3
    load = Load.concurrency(args.concurrency) if args.concurrency is not None else Load.request_rate(args.request_rate)
    if args.members:
        return perf_points_together(args, settings, load)
    if not args.model:
        print("error: give --model (or --members)", file=sys.stderr)
        return 2
    point = Point(model=args.model, batch_size=args.batch, load=load, streaming=args.streaming)
    try:
        result = measure_point(point, settings, args.grpc_url, args.http_url, cpu_budget_cores=args.cpu_budget,
                               budgets=latency_budgets(budget_constraints(args)),
                               input_args=inputs.perf_analyzer_args())  # fmt: skip
        message, code = result.model_dump_json(exclude_none=True), 0
    except PerfAnalyzerError as exc:
        message, code = str(exc)[:MAX_TERMINATION_MESSAGE], 1
    if args.termination_log is not None:
        args.termination_log.write_text(message)
    print(message)
    return code


def perf_points_together(args: argparse.Namespace, settings: MeasurementSettings, load: Load) -> int:
    """--members: several models measured at once over the same windows (adapters/perf_analyzer.measure_together);
    the termination message holds each member's numbers, compactly (a few members fit in its 4 KB)."""
    try:
        members = [Member.model_validate(m) for m in json.loads(args.members)]
    except (ValueError, ValidationError) as exc:
        print(f"error: --members: {exc}", file=sys.stderr)
        return 2
    points = [Point(model=m.model, batch_size=args.batch, load=load, streaming=m.streaming) for m in members]
    inputs = {m.model: m.inputs or InputSettings() for m in members}
    found = measure_together(points, settings, args.grpc_url, args.http_url, cpu_budget_cores=args.cpu_budget,
                             input_args_of=lambda model: inputs[model].perf_analyzer_args())  # fmt: skip
    message = json.dumps([compact_measurement(f) for f in found], separators=(",", ":"))[:MAX_TERMINATION_MESSAGE]
    if args.termination_log is not None:
        args.termination_log.write_text(message)
    print(message)
    return 0 if any(isinstance(f, PerfMeasurement) for f in found) else 1


class Member(BaseModel):
    """One model of --members."""

    model: str
    streaming: bool = False
    inputs: InputSettings | None = None


def compact_measurement(found: PerfMeasurement | PerfAnalyzerError) -> dict[str, Any]:
    """A member's result for the termination message: numbers to 5 significant digits, the why cut short."""
    if not isinstance(found, PerfMeasurement):
        return {"error": str(found)[:400]}
    data = found.model_dump(exclude_none=True)
    for name, value in data.items():
        if isinstance(value, float):
            data[name] = float(f"{value:.5g}")
    if "convergence" in data:
        data["convergence"] = data["convergence"][:120]
    return data


def copy_results(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="model-analyzer copy-results",
        description="Copy result files into a folder, each written whole, parts joined (the operator's results "
        "Job runs this). Files already in the folder that are not this analysis generation's are moved to a "
        "sibling <folder>.earlier-<time> first, never written over.",
    )
    parser.add_argument("source", type=Path)
    parser.add_argument("destination", type=Path)
    parser.add_argument(
        "--owner",
        default="{}",
        help="Whose results these are, as JSON: name, namespace, uid, "
        "generation (written to the folder, so a later analysis of the same name keeps them).",
    )
    parser.add_argument("--termination-log", type=Path)
    args = parser.parse_args(argv)
    owner = json.loads(args.owner)
    uid, generation = str(owner.get("uid", "")), int(owner.get("generation", 0))
    # A mounted ConfigMap also holds ..data links; a file too big for one ConfigMap arrives in parts.
    data = {p.name: p.read_text() for p in sorted(args.source.iterdir()) if not p.name.startswith(".") and p.is_file()}
    files = join_parts(data)
    target = args.destination
    try:
        set_aside = set_aside_earlier_results(args.destination, uid, generation)
        for name, text in files.items():
            target = args.destination / name
            write_atomic(target, text)
        if owner:
            target = args.destination / RESULTS_OWNER_FILE
            write_results_owner(args.destination, {**owner, "writtenAt": f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}"})
    except OSError as exc:  # one line, which the operator reads back as the Job's termination message
        print(f"error: cannot write {target}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    summary = {"copied": sorted(files), "to": str(args.destination)}
    if set_aside is not None:
        summary["setAside"] = set_aside.name
    message = json.dumps(summary)
    if args.termination_log is not None:
        args.termination_log.write_text(message[:MAX_TERMINATION_MESSAGE])
    print(message)
    return 0


def run(command: str, argv: Sequence[str]) -> int:
    return {"perf-point": perf_point, "copy-results": copy_results}[command](argv)

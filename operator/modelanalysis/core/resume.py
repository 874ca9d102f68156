"""Resuming a CLI run that was stopped or killed: whether the analysis.json it left can be continued with the
analysis asked for now. Pure: the engine does the continuing (it measures only what a result lacks, and its
searches decide from the points measured, so a resumed run makes the same decisions as one never stopped)."""

from __future__ import annotations

from typing import Any

from modelanalysis.core.results import AnalysisResult
from modelanalysis.core.spec import SweepSpec


def spec_record(spec: SweepSpec) -> dict[str, Any]:
    """The spec as an analysis.json keeps it, to compare a resume with."""
    return spec.model_dump(mode="json", by_alias=True, exclude_none=True)


def first_difference(before: Any, now: Any, path: str = "") -> str | None:
    """Where two records first differ, as `path: before, now` (None when they are the same)."""
    if isinstance(before, dict) and isinstance(now, dict):
        for key in list(dict.fromkeys([*before, *now])):
            found = first_difference(before.get(key), now.get(key), f"{path}.{key}" if path else key)
            if found:
                return found
        return None
    if isinstance(before, list) and isinstance(now, list) and len(before) == len(now):
        for i, (a, b) in enumerate(zip(before, now, strict=True)):
            found = first_difference(a, b, f"{path}[{i}]")
            if found:
                return found
        return None
    return None if before == now else f"{path or 'the spec'} was {_text(before)}, now {_text(now)}"


def _text(value: Any) -> str:
    return "not set" if value is None else repr(value)


def resume_refusal(saved: AnalysisResult, spec: SweepSpec, triton_version: str) -> str | None:
    """Why `saved` cannot be continued as the analysis `spec` asks for (None: it can)."""
    if saved.finished_at is not None and not saved.interrupted:
        return "it holds a finished analysis: nothing to resume (run without --resume to measure again)"
    if saved.spec is None:
        return "it does not record the analysis it was (written by an older version): run without --resume"
    if saved.triton_version != triton_version:
        return f"it was measured as Triton {saved.triton_version}, not {triton_version}: give the same --triton-version"
    difference = first_difference(saved.spec, spec_record(spec))
    if difference is not None:
        return f"it is another analysis ({difference}): give the same flags, or run without --resume"
    return None

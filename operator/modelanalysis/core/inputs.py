"""What perf_analyzer sends a model: shapes for its variable dimensions, real input data, string lengths, shared
memory; and the check, against the model's config as Triton reads it, that a model can be measured with them.

A BERT-style input (`INPUT_IDS`, `dims: [ -1 ]`) has no size until someone gives it one; perf_analyzer then
fails at every point ("input INPUT_IDS contains dynamic shape, provide shapes"). The check below finds that once,
before any point runs, and refuses that model with one sentence naming the input, its dims and the flag or field
to set; the analysis goes on with its other models.

The syntax is perf_analyzer's own: a shape is `NAME:D1,D2,...` (the dims after the batch dimension), input data
is `random`, `zero` or a JSON file in perf_analyzer's input-data format (`{"data": [{NAME: ...}, ...]}`, one
entry per request, each input as a flat list, or `{"content": [...], "shape": [...]}`, or `{"b64": ...}`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from modelanalysis.core.wire import WireModel

RANDOM, ZERO = "random", "zero"
ONE_SOURCE_OF_DATA = "give inputs.data or inputs.dataConfigMap, not both: perf_analyzer reads one input-data source"
# NAME:D1[,D2...], as admission checks it (the API server's regex and pydantic's read it alike).
SHAPE_PATTERN = r"^[^\p{Cc}]+:[1-9][0-9]*(,[1-9][0-9]*)*$"
# How long a random string perf_analyzer makes for a BYTES input, at most (its default is 128).
MAX_STRING_LENGTH = 1_048_576


class SharedMemory(StrEnum):
    """How perf_analyzer hands tensors to Triton (its --shared-memory): over the wire, in system shared memory
    (the load generator on the server's machine), or in CUDA memory (a GPU on it)."""

    NONE = "none"
    SYSTEM = "system"
    CUDA = "cuda"


@dataclass(frozen=True)
class Shape:
    """`INPUT_IDS:128` as perf_analyzer's --shape takes it: the input's name and its dims after the batch one."""

    name: str
    dims: tuple[int, ...]

    @property
    def text(self) -> str:
        return f"{self.name}:{','.join(str(d) for d in self.dims)}"


def parse_shape(text: str) -> Shape:
    """`NAME:D1,D2` -> Shape, or ValueError with the sentence to show."""
    name, sep, dims = text.strip().rpartition(":")
    values = [d.strip() for d in dims.split(",")] if sep else []
    if not name or not values or not all(v.isdecimal() and int(v) > 0 for v in values):
        raise ValueError(
            f"shape {text!r} is not NAME:D1[,D2...] with positive whole dims (perf_analyzer's --shape syntax, e.g. "
            "INPUT_IDS:128, the dims after the batch dimension)"
        )
    return Shape(name.strip(), tuple(int(v) for v in values))


class ConfigMapKey(WireModel):
    """One key of a ConfigMap in the analysis' namespace."""

    name: str = Field(min_length=1, max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    key: str = Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")


class InputSettings(WireModel):
    """What perf_analyzer sends: for every model (spec.inputs) or for one (models[].inputs, which wins field by
    field, and shape by shape for an input named in both)."""

    shapes: list[Annotated[str, Field(pattern=SHAPE_PATTERN, max_length=1024)]] | None = Field(
        None,
        max_length=64,
        description="Shapes of variable-size inputs, perf_analyzer's NAME:D1[,D2...] (the dims after the batch "
        "dimension), e.g. INPUT_IDS:128. A shape names an input; a model without that input ignores it.",
    )
    data: str | None = Field(
        None,
        min_length=1,
        max_length=4096,
        description="random (the default), zero, or a JSON file in perf_analyzer's input-data format (one entry per "
        "request, each with its inputs' values and, for variable dims, shapes). In a ModelAnalysis the file is a "
        "path inside the model repository claim.",
    )
    data_config_map: ConfigMapKey | None = Field(
        None,
        description="ModelAnalysis only, instead of data: the input-data JSON in this key of a ConfigMap of the "
        "analysis' namespace (the load-generator Job mounts it read-only).",
    )
    string_length: int | None = Field(
        None, ge=1, le=MAX_STRING_LENGTH, description="Length of the random strings sent to BYTES inputs."
    )
    shared_memory: SharedMemory | None = Field(
        None, description="none (the default), system, or cuda (only where the server has a GPU)."
    )

    @field_validator("shapes")
    @classmethod
    def _perf_analyzer_syntax(cls, shapes: list[str] | None) -> list[str] | None:
        for text in shapes or []:
            parse_shape(text)
        return shapes

    @model_validator(mode="after")
    def _one_source_of_data(self) -> InputSettings:
        if self.data is not None and self.data_config_map is not None:
            raise ValueError(ONE_SOURCE_OF_DATA)
        return self

    @property
    def parsed_shapes(self) -> list[Shape]:
        return [parse_shape(s) for s in self.shapes or []]

    @property
    def data_file(self) -> str | None:
        """The input-data file, when data names one (not random or zero)."""
        return self.data if self.data not in (None, RANDOM, ZERO) else None

    def merged_over(self, general: InputSettings) -> InputSettings:
        """These settings (one model's) over the general ones: a field set here wins; shapes merge by input."""
        shapes = {s.name: s for s in general.parsed_shapes} | {s.name: s for s in self.parsed_shapes}
        own_data = self.data is not None or self.data_config_map is not None
        return InputSettings(
            shapes=[s.text for s in shapes.values()] or None,
            data=self.data if own_data else general.data,
            data_config_map=self.data_config_map if own_data else general.data_config_map,
            string_length=self.string_length if self.string_length is not None else general.string_length,
            shared_memory=self.shared_memory if self.shared_memory is not None else general.shared_memory,
        )

    def perf_analyzer_args(self, data_path: str | None = None) -> list[str]:
        """perf_analyzer's flags for them; `data_path`: where the input-data file is seen from perf_analyzer
        (the load-generator Job mounts it elsewhere than the manifest names it)."""
        args: list[str] = []
        for shape in self.parsed_shapes:
            args += ["--shape", shape.text]
        if self.data is not None:
            args += ["--input-data", data_path if data_path and self.data_file else self.data]
        elif self.data_config_map is not None:  # where the Job mounts it (kube/objects.py), else in words
            where = self.data_config_map
            args += ["--input-data", data_path or f"configmap/{where.name}/{where.key}"]
        if self.string_length is not None:
            args += ["--string-length", str(self.string_length)]
        if self.shared_memory is not None:
            args += ["--shared-memory", self.shared_memory.value]
        return args

    @property
    def given(self) -> bool:
        fields = (self.shapes, self.data, self.data_config_map, self.string_length, self.shared_memory)
        return any(v is not None for v in fields)


@dataclass(frozen=True)
class ModelInput:
    """One input of a model's config as Triton reports it."""

    name: str
    data_type: str
    dims: tuple[int, ...]  # after the batch dimension; -1 where it varies
    optional: bool = False

    @property
    def variable(self) -> bool:
        return any(d < 0 for d in self.dims)

    def described(self) -> str:
        return f"{self.name} ({self.data_type}, dims [{', '.join(str(d) for d in self.dims)}])"


def model_inputs(config: dict[str, Any]) -> list[ModelInput]:
    """The inputs of Triton's JSON model config (its dims are numbers, or strings in some releases)."""
    return [
        ModelInput(
            name=str(i.get("name", "")),
            data_type=str(i.get("data_type", "")),
            dims=tuple(int(d) for d in i.get("dims", [])),
            optional=bool(i.get("optional", False)),
        )
        for i in config.get("input") or []
    ]


@dataclass(frozen=True)
class InputData:
    """What an input-data file gives, per input: the shape of each entry's value (None where an entry gives a
    flat list without one)."""

    entries: int
    shapes: dict[str, list[tuple[int, ...] | None]]


def parse_input_data(text: str, where: str) -> InputData:
    """Read perf_analyzer's input-data JSON; ValueError with one sentence when it is not that."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        where_in = f"line {exc.lineno}, column {exc.colno}"
        raise ValueError(f"input data {where} is not JSON ({exc.msg} at {where_in})") from None
    entries = document.get("data") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ValueError(
            f'input data {where} has no "data" list of entries: perf_analyzer\'s format is {{"data": [{{"INPUT": '
            "[...]}, ...]}, one entry per request"
        )
    shapes: dict[str, list[tuple[int, ...] | None]] = {}
    for number, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or not entry:
            raise ValueError(f"input data {where}: entry {number} is not an object of input names to values")
        for name, value in entry.items():
            shape = value.get("shape") if isinstance(value, dict) else None
            if shape is not None and not (isinstance(shape, list) and all(isinstance(d, int) for d in shape)):
                raise ValueError(f"input data {where}: entry {number}'s {name} shape {shape!r} is not a list of dims")
            shapes.setdefault(name, []).append(tuple(shape) if shape is not None else None)
    return InputData(entries=len(entries), shapes=shapes)


@dataclass(frozen=True)
class InputCheck:
    """The verdict on one model: refused (with the sentence), or measurable, with the largest batch its data can
    be sent at (perf_analyzer cannot batch entries whose shapes differ) and why."""

    refusal: str | None = None
    max_batch: int | None = None
    max_batch_reason: str = ""


def _listed(inputs: list[ModelInput]) -> str:
    return ", ".join(i.name for i in inputs) or "none"


def check_inputs(
    model: str, inputs: list[ModelInput], settings: InputSettings, data: InputData | None, scoped: set[str]
) -> InputCheck:
    """Whether `model` can be measured with `settings` (its own merged over the general ones). `data`: the
    input-data file's contents, when it could be read here (None: not checked here). `scoped`: the input names
    the user gave shapes for on this model alone (a shape for an input the model lacks is refused only then)."""
    by_name = {i.name: i for i in inputs}
    shapes = {s.name: s for s in settings.parsed_shapes}
    for name in sorted(scoped - set(by_name)):
        return InputCheck(f"{model} has no input {name} (its inputs: {_listed(inputs)}); fix the shape's input name")
    for shape in shapes.values():
        spec = by_name.get(shape.name)
        if spec is not None and not _fits(shape.dims, spec.dims):
            return InputCheck(
                f"{model}: shape {shape.text} does not fit input {spec.described()}: give {len(spec.dims)} dims, "
                "each equal to the config's where it is fixed"
            )
    if data is not None:
        needed = [i for i in inputs if not i.optional and i.name not in data.shapes]
        if needed:
            return InputCheck(
                f"{model}: input data {settings.data} has no {needed[0].name}; each entry needs every input the "
                f"model requires ({_listed([i for i in inputs if not i.optional])})"
            )
        for name, given in data.shapes.items():
            spec = by_name.get(name)
            bad = next((s for s in given if spec is not None and s is not None and not _fits(s, spec.dims)), None)
            if bad is not None and spec is not None:
                return InputCheck(
                    f"{model}: input data {settings.data} gives {name} the shape {list(bad)}, which does not fit "
                    f"{spec.described()}"
                )
    for spec in inputs:
        if not spec.variable or spec.optional or spec.name in shapes:
            continue
        if data is not None and all(s is not None for s in data.shapes.get(spec.name, [None])):
            continue  # every entry says its shape
        if data is None and (settings.data_file or settings.data_config_map):
            continue  # data not read here: perf_analyzer reads its shapes
        return InputCheck(
            f"{model}: input {spec.described()} has a variable dimension, so perf_analyzer cannot make up data for "
            f"it; give its shape with --shape {spec.name}:<dims> (manifest: inputs.shapes), or real requests with "
            "--input-data FILE (inputs.data)"
        )
    return _batch_limit(data)


def _fits(shape: tuple[int, ...], dims: tuple[int, ...]) -> bool:
    return len(shape) == len(dims) and all(d < 0 or d == s for s, d in zip(shape, dims, strict=True))


def _batch_limit(data: InputData | None) -> InputCheck:
    for name, shapes in (data.shapes if data else {}).items():
        distinct = sorted({s for s in shapes if s is not None})
        if len(distinct) > 1:
            seen = ", ".join(str(list(s)) for s in distinct[:4])
            return InputCheck(
                max_batch=1,
                max_batch_reason=f"the input data's {name} shapes differ ({seen}) and perf_analyzer cannot batch "
                "tensors of different shapes: batch 1 only (entries of one shape can be batched)",
            )
    return InputCheck()

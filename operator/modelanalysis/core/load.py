"""A point's load and its identity: the one vocabulary every planner, writer and adapter uses.

`Load` is what the load generator offers the server at one point: closed-loop concurrency (that many requests
in flight at all times) or an open-loop request rate (requests started per second, whether or not earlier ones
have answered). A new kind of load is one more `LoadKind` and its entries below; the points, keys, Job names,
CSV columns and perf_analyzer arguments all follow from them.

`PointIdentity` is what tells one point from another: the model, its config variant, the Triton release, the
batch size and the load, and for models measured together, the company it was measured in. `Point`
(core/sweep.py), `PointResult` and `BestPoint` (core/results.py) share it instead of copying its fields. On the
wire (analysis.json, recorded results) the load is flat, as it always was: `"concurrency": 4`, or
`"request_rate": 100`, in the place the class's `WIRE_ORDER` puts it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)


class LoadKind(StrEnum):
    CONCURRENCY = "concurrency"
    REQUEST_RATE = "request_rate"


# Per kind: the letter of its point key (`b8/c4`, `b8/r100`), its words, Model Analyzer's CSV column and
# perf_analyzer's range flag.
KEY_LETTER = {LoadKind.CONCURRENCY: "c", LoadKind.REQUEST_RATE: "r"}
WORDS = {LoadKind.CONCURRENCY: "concurrency", LoadKind.REQUEST_RATE: "request rate"}
UNIT = {LoadKind.CONCURRENCY: "", LoadKind.REQUEST_RATE: "/s"}
CSV_COLUMN = {LoadKind.CONCURRENCY: "Concurrency", LoadKind.REQUEST_RATE: "Request Rate"}
RANGE_FLAG = {LoadKind.CONCURRENCY: "--concurrency-range", LoadKind.REQUEST_RATE: "--request-rate-range"}
# Our own flag for it (the CLI's, and the load-generator Job's perf-point command).
CLI_FLAG = {LoadKind.CONCURRENCY: "--concurrency", LoadKind.REQUEST_RATE: "--request-rate"}


def number_text(value: float) -> str:
    """4 -> '4', 2.5 -> '2.5', 1000000 -> '1000000' (never 1e+06): a load value in keys, names and arguments."""
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return f"{value:f}".rstrip("0").rstrip(".")


LoadValue = int | float  # an int for concurrency; a rate may be fractional


class Load(BaseModel):
    """What the load generator offers at one point: `value` requests in flight, or `value` requests per second."""

    model_config = ConfigDict(frozen=True)

    kind: LoadKind
    value: LoadValue

    @field_validator("value")
    @classmethod
    def _whole_numbers_as_ints(cls, value: int | float) -> int | float:
        # 100.0 and 100 are one rate: one key, one JSON number.
        return int(value) if isinstance(value, float) and value.is_integer() else value

    @classmethod
    def concurrency(cls, value: int) -> Load:
        return cls(kind=LoadKind.CONCURRENCY, value=value)

    @classmethod
    def request_rate(cls, value: float) -> Load:
        return cls(kind=LoadKind.REQUEST_RATE, value=value)

    @property
    def key_part(self) -> str:
        """`c4`, `r100`: its part of a point's key and of its Job's name."""
        return f"{KEY_LETTER[self.kind]}{number_text(self.value)}"

    @property
    def words(self) -> str:
        """`concurrency 4`, `request rate 100/s`."""
        return f"{WORDS[self.kind]} {number_text(self.value)}{UNIT[self.kind]}"

    @property
    def csv_column(self) -> str:
        return CSV_COLUMN[self.kind]

    @property
    def cli_arg(self) -> str:
        """`--concurrency=4`: the point's load as our perf-point command takes it."""
        return f"{CLI_FLAG[self.kind]}={number_text(self.value)}"

    def perf_analyzer_args(self) -> list[str]:
        """The range flag that holds perf_analyzer at exactly this load."""
        text = number_text(self.value)
        return [RANGE_FLAG[self.kind], f"{text}:{text}"]

    @property
    def is_concurrency(self) -> bool:
        return self.kind == LoadKind.CONCURRENCY

    @classmethod
    def of(cls, entry: Any) -> Load:
        """The load of a flat record (a status entry) from whichever load field it has: `concurrency`, ..."""
        for kind in LoadKind:
            value = getattr(entry, kind.value, None)
            if value is not None:
                return cls(kind=kind, value=value)
        raise ValueError(f"a record without a load: {entry!r}")


class PointIdentity(BaseModel):
    """Which point: the model Triton serves (what perf_analyzer is pointed at), its config variant, the Triton
    release, the batch size and the load. Subclasses add what they know of it."""

    model: str
    batch_size: int
    load: Load
    variant: str = ""  # the config variant loaded (core/variants.py); empty: the model's own config
    triton_version: str = ""  # the Triton release it ran on, when an analysis compares several; else empty
    # Models measured together (spec.profileModelsConcurrently): the variants measured at the same time on the same
    # server. Part of which point it is: one variant measured beside two others' variants is two points.
    measured_with: list[str] | None = None

    # Left out of its JSON while empty (core/wire.OmitsEmptyNewFields does it for other records): points of models
    # measured alone read and write as they always did.
    OMITTED_WHEN_EMPTY: ClassVar[tuple[str, ...]] = ("measured_with",)

    # The order of the flat wire form's keys, where a subclass's differs from its fields' (`load` stands for the
    # load's own key): analysis.json keeps the order it always had.
    WIRE_ORDER: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _load_from_its_wire_key(cls, data: Any) -> Any:
        if isinstance(data, dict) and "load" not in data:
            for kind in LoadKind:
                if kind.value in data:
                    value = data[kind.value]
                    data = {k: v for k, v in data.items() if k != kind.value}
                    data["load"] = {"kind": kind, "value": value}
                    break
        return data

    @model_serializer(mode="wrap")
    def _load_as_its_wire_key(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
        data = handler(self)
        if not isinstance(data, dict) or "load" not in data:
            return data
        order = self.WIRE_ORDER or tuple(data)
        flat: dict[str, Any] = {}
        for name in order + tuple(k for k in data if k not in order):
            if name == "load":
                flat[self.load.kind.value] = self.load.value
            elif name in data:
                flat[name] = data[name]
        for name in getattr(self, "OMITTED_WHEN_EMPTY", ()):  # core/wire.OmitsEmptyNewFields, for a subclass
            if flat.get(name, 0) is None:
                del flat[name]
        return flat

    @property
    def variant_name(self) -> str:
        return self.variant or self.model

    @property
    def key(self) -> str:
        """A stable identifier, used to tell which points are already measured: `add_sub_config_1/b8/c4`,
        prefixed with the Triton version (`24.08-py3/...`) when several are compared, and followed by its company when
        measured together (`add_sub/b1/c4+matmul_config_1`)."""
        return point_key(self.variant_name, self.batch_size, self.load, self.triton_version, self.measured_with)

    @property
    def where(self) -> str:
        """`batch 8 concurrency 4`: the point in words, without its model."""
        return f"batch {self.batch_size} {self.load.words}"

    def identity(self) -> dict[str, Any]:
        """Its identity fields, to build another kind of point from (Point(**result.identity()))."""
        return {name: getattr(self, name) for name in PointIdentity.model_fields}


def point_key(
    variant_name: str, batch_size: int, load: Load, triton_version: str = "", measured_with: list[str] | None = None
) -> str:
    key = f"{variant_name}/b{batch_size}/{load.key_part}"
    if measured_with:
        key += "+" + "+".join(sorted(measured_with))
    return f"{triton_version}/{key}" if triton_version else key

"""How a run ends early: stopped (the daemon was asked to, or the spec changed; it resumes from status) or failed
(with a reason and a sentence for the analysis's conditions)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from modelanalysis.kube.resource import ConditionType, Reason


class Stopped(Protocol):
    def wait(self, timeout: float | None = None) -> object: ...
    def is_set(self) -> bool: ...


class StopRun(Exception):
    """The daemon was asked to stop, or the spec changed: leave the rest to the next run."""


class AnalysisFailed(Exception):
    def __init__(self, reason: Reason, message: str, condition: ConditionType = ConditionType.READY) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.condition = condition


EventSink = Callable[[str, str, str], None]  # (type Normal|Warning, reason, message)

"""How long the run's waits may last: one Deadline type and the named limits, instead of bare `+ 300`s.

Every wait polls with the run's own sleep (which returns at once when kopf stops the daemon) until what it waits
for is there or its Deadline has passed; what happens then is the caller's (fail with a sentence, or go on)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

# The results Job copies a few files: past this it is stuck (its pod cannot start, the claim hangs).
RESULTS_JOB_SECONDS = 300.0
# A point's Job may outlive its own point timeout by this much (pod start, image, termination message).
POINT_JOB_GRACE_SECONDS = 120.0
# A deleted Job and its pods must be gone before a rerun of the point starts under the same name.
JOB_GONE_SECONDS = 120.0
# A new analysis waits this long for the children of a deleted one of the same name to be garbage-collected.
LEFTOVER_SECONDS = 120.0


@dataclass
class Deadline:
    """A limit on one wait, on the monotonic clock."""

    seconds: float
    started: float = field(default_factory=time.monotonic)

    @property
    def passed(self) -> bool:
        return time.monotonic() - self.started > self.seconds

"""The operator-wide cap on Triton pods: how many analyses (or trials) hold a Triton pod at once."""

from __future__ import annotations

import threading


class TritonSlots:
    """Caps how many Triton pods this operator runs at once; analyses beyond the cap wait as Queued."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.holders: set[str] = set()
        self.lock = threading.Lock()

    def acquire(self, key: str, *, already_running: bool) -> bool:
        with self.lock:
            # An analysis whose pod already exists (an operator restart) keeps it, even past the cap.
            if key in self.holders or already_running or len(self.holders) < self.limit:
                self.holders.add(key)
                return True
            return False

    def release(self, key: str) -> None:
        with self.lock:
            self.holders.discard(key)

    def release_analysis(self, key: str) -> None:
        """Free the analysis' slot and those of its trials (`<key>#<n>`)."""
        with self.lock:
            self.holders = {h for h in self.holders if h != key and not h.startswith(f"{key}#")}

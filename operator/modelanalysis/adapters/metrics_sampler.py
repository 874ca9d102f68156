"""Sample Triton's Prometheus endpoint on a fixed interval while a point runs."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request

from modelanalysis.core.server_metrics import ServerSample, parse_triton_metrics


def scrape(metrics_url: str, timeout_s: float = 2.0) -> ServerSample:
    with urllib.request.urlopen(metrics_url, timeout=timeout_s) as response:
        text = response.read().decode("utf-8", errors="replace")
    return parse_triton_metrics(text, timestamp=time.time())


class MetricsSampler:
    """A background thread that scrapes `metrics_url` every `interval_s` between start() and stop().

    It scrapes once at start and once at stop, so the window's edges are covered whatever the interval.
    """

    def __init__(self, metrics_url: str, interval_s: float) -> None:
        self.metrics_url = metrics_url
        self.interval_s = interval_s
        self.samples: list[ServerSample] = []
        self.errors = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _scrape_once(self) -> None:
        try:
            self.samples.append(scrape(self.metrics_url))
        except (urllib.error.URLError, OSError, ValueError):
            self.errors += 1  # a missed scrape leaves a gap; the window's max still stands

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._scrape_once()

    def start(self) -> None:
        self._scrape_once()
        self._thread = threading.Thread(target=self._run, name="metrics-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> list[ServerSample]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._scrape_once()
        return sorted(self.samples, key=lambda s: s.timestamp)


def sample_for(metrics_url: str, duration_s: float, interval_s: float) -> list[ServerSample]:
    """Sample for a fixed duration (the baseline)."""
    sampler = MetricsSampler(metrics_url, interval_s)
    sampler.start()
    time.sleep(duration_s)
    return sampler.stop()

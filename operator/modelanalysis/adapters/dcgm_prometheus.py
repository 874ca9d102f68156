"""Memory utilization from DCGM, read from a Prometheus server that scrapes NVIDIA's dcgm-exporter.

Triton exports no memory-bandwidth series. DCGM's DCGM_FI_DEV_MEM_COPY_UTIL is the share of time device
memory was being read or written (%): the seed's "Maximum Memory Utilization".
"""

from __future__ import annotations

import math

MEMORY_COPY_UTIL = "DCGM_FI_DEV_MEM_COPY_UTIL"


class PrometheusQueryError(RuntimeError):
    pass


class DcgmMemoryUtilization:
    def __init__(self, prometheus_url: str, metric: str = MEMORY_COPY_UTIL, timeout_s: float = 10.0) -> None:
        self.prometheus_url = prometheus_url
        self.metric = metric
        # Imported here: prometheus_api_client pulls in pandas, which every other command can do without.
        from prometheus_api_client import PrometheusConnect

        # Without a timeout, a Prometheus that accepts the connection but never answers hangs the sweep.
        self.client = PrometheusConnect(url=prometheus_url, disable_ssl=True, timeout=timeout_s)

    def max_by_gpu(self, start: float, end: float) -> dict[str, float]:
        """The maximum of the metric over [start, end], per GPU UUID."""
        window_s = max(1, math.ceil(end - start))  # never shorter than the point
        query = f"max by (UUID) (max_over_time({self.metric}[{window_s}s]))"
        try:
            series = self.client.custom_query(query=query, params={"time": end})
        except Exception as exc:  # the client raises several types; all mean "no answer"
            raise PrometheusQueryError(f"Prometheus at {self.prometheus_url} did not answer {query!r}: {exc}") from exc
        return {str(s["metric"].get("UUID", "")): float(s["value"][1]) for s in series}

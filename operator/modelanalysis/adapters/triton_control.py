"""Talk to a running Triton server over HTTP: readiness, the model repository API, model configs."""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from typing import Any

import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from modelanalysis.core.inputs import ModelInput, model_inputs
from modelanalysis.core.pipeline import ensemble_steps


class TritonUnreachable(RuntimeError):
    pass


class ModelLoadError(RuntimeError):
    """Triton refused to load a model; the message is Triton's own text."""


@dataclass(frozen=True)
class ModelConfigSummary:
    max_batch_size: int
    instance_group: str
    inputs: tuple[ModelInput, ...] = ()
    # model_transaction_policy.decoupled: the model may answer a request with many responses (it streams).
    decoupled: bool = False
    # An ensemble's composing models, in step order (core/pipeline.py); empty for any other model.
    composing: tuple[str, ...] = ()


def summarize_model_config(config: dict[str, Any]) -> ModelConfigSummary:
    """max_batch_size and Model Analyzer's "Instance Group" text (e.g. '2:GPU') from Triton's JSON config."""
    groups = config.get("instance_group") or []
    parts = []
    for group in groups:
        kind = str(group.get("kind", "KIND_AUTO")).removeprefix("KIND_")
        parts.append(f"{group.get('count', 1)}:{kind}")
    return ModelConfigSummary(
        max_batch_size=int(config.get("max_batch_size", 0)),
        instance_group="/".join(parts),
        inputs=tuple(model_inputs(config)),
        decoupled=bool((config.get("model_transaction_policy") or {}).get("decoupled", False)),
        composing=ensemble_steps(config),
    )


class TritonControl:
    def __init__(self, http_url: str, timeout_s: float = 120.0) -> None:
        self.http_url = http_url
        self.client = httpclient.InferenceServerClient(
            url=http_url, connection_timeout=timeout_s, network_timeout=timeout_s
        )

    def wait_ready(self, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        last_error = "no answer"
        while time.monotonic() < deadline:
            try:
                if self.client.is_server_ready():
                    return
                last_error = "it answers but is not ready"
            except (InferenceServerException, OSError) as exc:
                last_error = str(exc) or type(exc).__name__
            time.sleep(0.2)
        raise TritonUnreachable(
            f"Triton at {self.http_url} is not reachable or not ready ({last_error}); "
            "check --triton-url (the server's HTTP host:port) and that the server is running."
        )

    def _gone(self, exc: OSError) -> TritonUnreachable:
        # The client raises OSError (ConnectionRefusedError, a timeout) when the server has gone away mid-run.
        return TritonUnreachable(
            f"Triton at {self.http_url} stopped answering ({exc or type(exc).__name__}); "
            "check that the server is still running (its log says why it stopped)."
        )

    def server_version(self) -> str:
        try:
            return str(self.client.get_server_metadata().get("version", ""))
        except InferenceServerException:
            return ""
        except OSError as exc:
            raise self._gone(exc) from None

    def is_model_ready(self, model: str) -> bool:
        try:
            return bool(self.client.is_model_ready(model))
        except InferenceServerException:
            return False
        except OSError as exc:
            raise self._gone(exc) from None

    def load(self, model: str, config: dict[str, Any] | None = None) -> None:
        """Load (or reload) `model`; with `config`, in place of its config.pbtxt (Triton's config override: the
        repository is not written)."""
        try:
            self.client.load_model(model, config=None if config is None else json.dumps(config))
        except InferenceServerException as exc:
            raise ModelLoadError(exc.message() or str(exc)) from None
        except OSError as exc:
            raise self._gone(exc) from None

    def unload(self, model: str, timeout_s: float = 60.0) -> None:
        """Unload `model` and wait until Triton has finished doing so.

        Triton answers the unload request at once and tears the model's instances down in the background
        (over a second for a Python-backend model); until then their GPU and CPU memory is still in use, and
        a point measured meanwhile was charged with it (seen on an H100: 2577 MB for add_sub, whose own
        points showed 619 MB, right after a GPU model was unloaded).
        """
        # Best effort: the server may not allow explicit control, or may be going away (then the client
        # raises OSError, e.g. ConnectionRefusedError, which must not replace a KeyboardInterrupt being handled).
        with contextlib.suppress(InferenceServerException, OSError):
            self.client.unload_model(model, unload_dependents=True)
            deadline = time.monotonic() + timeout_s
            while self._still_loaded(model) and time.monotonic() < deadline:
                time.sleep(0.05)

    def _still_loaded(self, model: str) -> bool:
        index = self.client.get_model_repository_index()
        return any(entry.get("name") == model and entry.get("state") in ("READY", "UNLOADING") for entry in index)

    def model_config(self, model: str) -> ModelConfigSummary:
        return summarize_model_config(self.raw_model_config(model))

    def raw_model_config(self, model: str) -> dict[str, Any]:
        """The loaded model's config as Triton holds it (its JSON form, defaults filled in)."""
        try:
            return dict(self.client.get_model_config(model))
        except InferenceServerException as exc:
            raise ModelLoadError(exc.message() or str(exc)) from None
        except OSError as exc:
            raise self._gone(exc) from None

    def close(self) -> None:
        self.client.close()

"""The winning config variant as a model the user can deploy: <export>/output_model_repository/<model>/, as NVIDIA
Model Analyzer's output_model_repository. Its config.pbtxt is the whole config Triton loaded for the variant, in
protobuf text format; the model's other files (its version folders, weights) are symlinks to the originals, so
nothing large is copied (`cp -rL` makes a standalone copy)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelanalysis.adapters.files import write_atomic

OUTPUT_MODEL_REPOSITORY = "output_model_repository"


class NoProtobuf(RuntimeError):
    pass


def model_config_text(config: dict[str, Any]) -> str:
    """Triton's JSON form of a model config as a config.pbtxt."""
    try:
        from google.protobuf import json_format, text_format
        from tritonclient.grpc import model_config_pb2
    except ImportError as exc:  # tritonclient[grpc] brings both; the image's [http] does not
        raise NoProtobuf(f"writing config.pbtxt needs tritonclient[grpc] ({exc})") from None
    message = json_format.ParseDict(config, model_config_pb2.ModelConfig(), ignore_unknown_fields=True)
    return str(text_format.MessageToString(message))


def write_deployable_model(config: dict[str, Any], destination: Path, source: Path | None) -> Path:
    """<destination>/config.pbtxt for `config`, beside links to everything else in the model's own folder."""
    destination.mkdir(parents=True, exist_ok=True)
    if source is not None and source.is_dir():
        for entry in sorted(source.iterdir()):
            link = destination / entry.name
            if entry.name != "config.pbtxt" and not link.exists() and not link.is_symlink():
                link.symlink_to(entry.resolve())
    write_atomic(destination / "config.pbtxt", model_config_text(config))
    return destination

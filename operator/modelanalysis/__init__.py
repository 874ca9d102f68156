"""Profile models on NVIDIA Triton Inference Server, from a CLI or a Kubernetes operator."""

__version__ = "0.1.0"

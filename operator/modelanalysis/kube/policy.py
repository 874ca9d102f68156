"""What an analysis may ask the operator to run: the Triton image allowlist, as pure decisions.

Creating a ModelAnalysis makes the operator's ServiceAccount create a pod; these checks run before it does.
"""

from __future__ import annotations

from modelanalysis.kube.settings import OperatorSettings

ALLOWLIST_VALUE = "triton.allowedImageRepositories"
ALLOWLIST_ENV = "MODELANALYSIS_TRITON_ALLOWED_IMAGE_REPOSITORIES"


def image_repository(image: str) -> str:
    """The repository of an image reference, as written: without its @digest and :tag."""
    name = image.split("@", 1)[0]
    colon = name.rfind(":")
    return name[:colon] if colon > name.rfind("/") else name  # a colon before the last / is a registry port


def allowed_repositories(settings: OperatorSettings) -> list[str]:
    """The operator's own Triton repository is always allowed; the allowlist adds to it."""
    return [settings.triton_image_repository, *settings.triton_allowed_image_repositories]


def repository_allowed(repository: str, allowed: list[str]) -> bool:
    """Exact match (as written: no docker.io/ or :latest normalization); `path/*` allows anything under
    path/; `*` allows any repository. A `.` or `..` segment is never allowed: it could step out of a path."""
    if any(part in (".", "..") for part in repository.split("/")):
        return False
    for entry in allowed:
        if entry == "*" or repository == entry:
            return True
        if entry.endswith("/*") and repository.startswith(entry[:-1]):
            return True
    return False


def image_refusal(image: str, settings: OperatorSettings) -> str | None:
    """None when the operator may run `image` for Triton, else the sentence that says what to change."""
    allowed = allowed_repositories(settings)
    repository = image_repository(image)
    if repository_allowed(repository, allowed):
        return None
    return (
        f"Triton image {image} is not from an allowed repository ({', '.join(allowed)}): set spec.triton.image "
        f"to an image from one of those (or spec.triton.version for {settings.triton_image_repository}), or ask "
        f"the operator's administrator to add {repository} to the chart value {ALLOWLIST_VALUE} ({ALLOWLIST_ENV})"
    )

"""A thin layer over the Kubernetes client: just the calls the operator makes, with 404/409 folded in."""

from __future__ import annotations

from typing import Any, Protocol

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from modelanalysis.kube.ownership import name_taken, owned_by, owner_of
from modelanalysis.kube.refusals import api_message, client_message
from modelanalysis.kube.resource import GROUP, PLURAL, VERSION


class AnalysisReader(Protocol):
    """What a run's stop signal asks of the API: the analysis as it is now."""

    def get_analysis(self, namespace: str, name: str) -> dict[str, Any] | None: ...


class ChildApi(AnalysisReader, Protocol):
    """Every call an analysis's run makes (reconcile.AnalysisRun); KubeApi is the real one, tests/fakes.py a
    recording stand-in."""

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None: ...
    def create(self, manifest: dict[str, Any]) -> dict[str, Any]: ...
    def dry_run(self, manifest: dict[str, Any]) -> str | None: ...
    def read(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None: ...
    def read_owned(self, kind: str, namespace: str, name: str, owner: dict[str, Any]) -> dict[str, Any] | None: ...
    def delete(self, kind: str, namespace: str, name: str, owner_uid: str) -> None: ...
    def list(self, kind: str, namespace: str, selector: str = "") -> list[dict[str, Any]]: ...


class KubeApi:
    def __init__(self, api_client: client.ApiClient) -> None:
        # Typed as Any: the client's stubs ask for its model classes, but it takes plain dicts, which is
        # what the pure builders in objects.py return.
        self.core: Any = client.CoreV1Api(api_client)
        self.batch: Any = client.BatchV1Api(api_client)
        self.custom: Any = client.CustomObjectsApi(api_client)
        self.api_client = api_client

    # -- the analysis ---------------------------------------------------------------------------------
    def get_analysis(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return dict(self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, PLURAL, name, {"status": status})

    # -- children -------------------------------------------------------------------------------------
    def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Create the child, or return the one already there if it is this analysis's own (a resumed run).

        An object of that name that the analysis does not own (its owner references lack the analysis's uid,
        which `manifest` names) is never written, adopted or returned: NameTaken says whose it is."""
        kind, ns = manifest["kind"], manifest["metadata"]["namespace"]
        name = manifest["metadata"]["name"]
        owner = owner_of(manifest)
        try:
            if kind == "Pod":
                return self._plain(self.core.create_namespaced_pod(ns, manifest))
            if kind == "Job":
                return self._plain(self.batch.create_namespaced_job(ns, manifest))
            if kind == "ConfigMap":
                return self._plain(self.core.create_namespaced_config_map(ns, manifest))
        except ApiException as exc:
            if exc.status != 409:
                raise
            existing = self.read_owned(kind, ns, name, owner)
            if existing is None:  # deleted between the two calls: the next reconcile creates it
                raise
            if kind == "ConfigMap":  # results are rewritten whole when a run is redone
                # At the version just read: if anyone changed it since, the API server refuses (409).
                replacement = {
                    **manifest,
                    "metadata": {**manifest["metadata"], "resourceVersion": existing["metadata"]["resourceVersion"]},
                }
                return self._plain(self.core.replace_namespaced_config_map(name, ns, replacement))
            return existing
        raise ValueError(f"unsupported kind {kind}")

    def dry_run(self, manifest: dict[str, Any]) -> str | None:
        """None when the API server would create the object as written (unknown fields refused), else why not."""
        namespace = manifest["metadata"]["namespace"]
        options = {"dry_run": "All", "field_validation": "Strict"}
        try:
            if manifest["kind"] == "Pod":
                self.core.create_namespaced_pod(namespace, manifest, **options)
            elif manifest["kind"] == "Job":
                self.batch.create_namespaced_job(namespace, manifest, **options)
            else:
                raise ValueError(f"unsupported kind {manifest['kind']}")
        except ValidationError as exc:  # the client checks required fields and types itself, before sending
            return client_message(exc)
        except ApiException as exc:
            if exc.status in (400, 422):  # BadRequest (a wrong type, an unknown field), Invalid
                return api_message(exc.body)
            if exc.status != 409:  # 409: it exists already (a resumed run), so it was valid
                raise
        return None

    def read(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        obj: Any
        try:
            if kind == "Pod":
                obj = self.core.read_namespaced_pod(name, namespace)
            elif kind == "Job":
                obj = self.batch.read_namespaced_job(name, namespace)
            elif kind == "ConfigMap":
                obj = self.core.read_namespaced_config_map(name, namespace)
            elif kind == "PersistentVolumeClaim":
                obj = self.core.read_namespaced_persistent_volume_claim(name, namespace)
            else:
                raise ValueError(f"unsupported kind {kind}")
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return self._plain(obj)

    def read_owned(self, kind: str, namespace: str, name: str, owner: dict[str, Any]) -> dict[str, Any] | None:
        """The object if it is the analysis's own (`owner`: the analysis's owner reference), None if there is none;
        NameTaken if someone else's holds the name (it is then neither read as the analysis's nor touched)."""
        obj = self.read(kind, namespace, name)
        if obj is not None and not owned_by(obj, owner["uid"]):
            raise name_taken(obj, kind, owner["kind"], owner["name"])
        return obj

    def delete(self, kind: str, namespace: str, name: str, owner_uid: str) -> None:
        """Delete the analysis's own object of that name; one that is not its own is left alone.

        The delete carries the uid that was read as a precondition, so an object re-created under the same
        name in between (by anyone) is not the one deleted."""
        obj = self.read(kind, namespace, name)
        if obj is None or not owned_by(obj, owner_uid):
            return
        body = client.V1DeleteOptions(
            propagation_policy="Background",
            grace_period_seconds=0 if kind == "Pod" else None,
            preconditions=client.V1Preconditions(uid=obj["metadata"]["uid"]),
        )
        try:
            if kind == "Pod":
                self.core.delete_namespaced_pod(name, namespace, body=body)
            elif kind == "Job":
                self.batch.delete_namespaced_job(name, namespace, body=body)
            else:
                raise ValueError(f"unsupported kind {kind}")
        except ApiException as exc:
            if exc.status not in (404, 409):  # 409: the precondition failed, it is another object now
                raise

    def list(self, kind: str, namespace: str, selector: str = "") -> list[dict[str, Any]]:
        """The objects of that kind in the namespace (every namespace, for pods, where it is "")."""
        items: list[Any]
        if kind == "Pod" and not namespace:
            items = self.core.list_pod_for_all_namespaces(label_selector=selector).items
        elif kind == "Pod":
            items = self.core.list_namespaced_pod(namespace, label_selector=selector).items
        elif kind == "Job":
            items = self.batch.list_namespaced_job(namespace, label_selector=selector).items
        else:
            raise ValueError(f"unsupported kind {kind}")
        return [self._plain(i) for i in items]

    def _plain(self, obj: Any) -> dict[str, Any]:
        """A client model object as the plain dict the rest of the operator reads."""
        return dict(self.api_client.sanitize_for_serialization(obj))  # type: ignore[no-untyped-call]

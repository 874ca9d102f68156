"""What is the analysis's own: pure rules for the objects the operator may touch.

Child names are derived from the analysis (`<name>-results`, `<name>-g<gen>-triton`, ...), so a name alone can
already belong to someone else: a user's ConfigMap, another tool's Job. The operator writes, reads as its own,
or deletes only objects whose owner references carry this analysis's uid; anything else under a name it wants is
a collision, which ends the analysis saying what to do and leaves the object exactly as it was.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def owned_by(obj: dict[str, Any], owner_uid: str) -> bool:
    """Whether `obj` names the analysis with this uid among its owners."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(ref.get("uid") == owner_uid for ref in refs)


def owner_of(manifest: dict[str, Any]) -> dict[str, Any]:
    """The owner reference a child manifest names (the operator sets exactly one: the analysis)."""
    refs = manifest["metadata"].get("ownerReferences") or []
    if not refs:
        raise ValueError(f"{manifest['kind']} {manifest['metadata']['name']} has no owner reference")
    return dict(refs[0])


def holder(obj: dict[str, Any]) -> str:
    """Who an object belongs to, in words: its controlling owner, or nobody the API server knows of."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    ref = next((r for r in refs if r.get("controller")), refs[0] if refs else None)
    if ref is None:
        return "it has no owner (made by hand or by another tool)"
    return f"it belongs to {ref.get('kind', 'an object')} {ref.get('name', '?')}"


def left_by_namesake(obj: dict[str, Any], kind: str, name: str) -> bool:
    """Whether `obj` belongs to an analysis of this kind and name but another uid: one that was deleted (names are
    unique in a namespace), whose children the garbage collector is removing. Deleted and re-applied at once,
    a new analysis meets them; they go by themselves."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(r.get("controller") and r.get("kind") == kind and r.get("name") == name for r in refs)


class NameTaken(Exception):
    """An object the analysis needs to create already exists, and is not the analysis's own. `leftover`: it is
    a child of a deleted analysis of the same name, which the garbage collector is about to remove."""

    def __init__(self, kind: str, name: str, owner: str, leftover: bool = False) -> None:
        self.kind, self.name, self.owner, self.leftover = kind, name, owner, leftover
        super().__init__(f"{kind} {name} already exists and is not this analysis's ({owner})")


def collision_message(taken: NameTaken, kept: str = "") -> str:
    """One sentence: which object is in the way, that it was left alone, and the two ways out."""
    return (
        f"{taken.kind} {taken.name} already exists and is not this analysis's ({taken.owner}), so the operator "
        f"left it untouched{kept}; rename the analysis (metadata.name), or remove that {taken.kind} "
        f"(`kubectl delete {taken.kind.lower()} {taken.name}`) and re-create the analysis."
    )


def name_taken(obj: dict[str, Any], kind: str, owner_kind: str, owner_name: str) -> NameTaken:
    """The collision an object that is not the analysis's own makes (owner_*: the analysis, to tell a leftover)."""
    meta = obj.get("metadata") or {}
    return NameTaken(kind, str(meta.get("name")), holder(obj), left_by_namesake(obj, owner_kind, owner_name))


def first_collision(
    existing: Iterable[dict[str, Any]], wanted: Iterable[str], kind: str, owner: dict[str, Any]
) -> NameTaken | None:
    """The first object among `existing` that holds a name in `wanted` without being the analysis's own (`owner`:
    the analysis's owner reference)."""
    names = set(wanted)
    for obj in existing:
        meta = obj.get("metadata") or {}
        if meta.get("name") in names and not owned_by(obj, owner["uid"]):
            return name_taken(obj, kind, owner["kind"], owner["name"])
    return None

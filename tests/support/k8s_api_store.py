"""The state behind the Kubernetes API-server double: objects, resourceVersions, history, patches.

Pure and synchronous (no sockets, no awaits) so that an HTTP handler can take a consistent
snapshot of the history and subscribe to live changes in one step. What it models:

* a cluster-wide ``resourceVersion`` that grows by one at every write;
* ``create`` (409 AlreadyExists), ``replace`` (409 Conflict when ``metadata.resourceVersion`` is
  stale), ``patch`` (JSON Patch RFC 6902, JSON merge patch RFC 7386, strategic merge patch as far
  as metadata maps go: it merges maps like a merge patch and replaces lists), ``delete``;
* equality- and set-based label selectors (``a=b``, ``a==b``, ``a!=b``, ``a``, ``!a``,
  ``a in (x,y)``, ``a notin (x,y)``);
* a bounded change history: a watch from a resourceVersion older than what it retains is Gone.
"""

from __future__ import annotations

import copy
import re
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

KINDS: dict[str, tuple[str, str]] = {
    # resource -> (kind, apiVersion)
    "pods": ("Pod", "v1"),
    "configmaps": ("ConfigMap", "v1"),
    "leases": ("Lease", "coordination.k8s.io/v1"),
}


class ApiError(Exception):
    """An error the API server answers with a ``Status`` object."""

    REASONS = {
        400: "BadRequest",
        404: "NotFound",
        409: "Conflict",
        410: "Expired",
        415: "UnsupportedMediaType",
        422: "Invalid",
        500: "InternalError",
        503: "ServiceUnavailable",
    }

    def __init__(self, code: int, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or self.REASONS.get(code, "Unknown")

    def status(self) -> dict[str, Any]:
        return status_object(self.code, self.reason, self.message)


def status_object(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


# ---------------------------------------------------------------------------------------------
# label selectors

Requirement = Callable[[dict[str, str]], bool]
_SET_RE = re.compile(r"^\s*([^\s!=,()]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQ_RE = re.compile(r"^\s*([^\s!=,()]+)\s*(==|=|!=)\s*([^\s!=,()]*)\s*$")
_EXISTS_RE = re.compile(r"^\s*(!?)\s*([^\s!=,()]+)\s*$")


def _split_selector(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p for p in parts if p.strip()]


def parse_selector(text: str | None) -> Callable[[dict[str, Any]], bool]:
    """A predicate over objects; raises ``ApiError(400)`` on a selector Kubernetes would refuse."""
    reqs: list[Requirement] = []
    for part in _split_selector(text or ""):
        if m := _SET_RE.match(part):
            key, op, values = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",")}
            if op == "in":
                reqs.append(lambda ls, k=key, vs=values: ls.get(k) in vs)
            else:
                reqs.append(lambda ls, k=key, vs=values: ls.get(k) not in vs)
        elif m := _EQ_RE.match(part):
            key, op, value = m.groups()
            if op == "!=":
                reqs.append(lambda ls, k=key, v=value: ls.get(k) != v)
            else:
                reqs.append(lambda ls, k=key, v=value: ls.get(k) == v)
        elif m := _EXISTS_RE.match(part):
            neg, key = m.groups()
            if neg:
                reqs.append(lambda ls, k=key: k not in ls)
            else:
                reqs.append(lambda ls, k=key: k in ls)
        else:
            raise ApiError(400, f"unable to parse requirement: {part!r}")

    def matches(obj: dict[str, Any]) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(r(labels) for r in reqs)

    return matches


# ---------------------------------------------------------------------------------------------
# patches


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise ApiError(422, f"invalid JSON pointer {path!r}")
    return [_unescape(t) for t in path[1:].split("/")]


def _parent(doc: Any, tokens: list[str], path: str) -> Any:
    cur = doc
    for t in tokens[:-1]:
        if isinstance(cur, dict) and t in cur:
            cur = cur[t]
        elif isinstance(cur, list) and t.isdigit() and int(t) < len(cur):
            cur = cur[int(t)]
        else:
            # The message real Kubernetes gives (the Druid gotcha: add under a missing map).
            raise ApiError(422, f"the server rejected our request: doc is missing path: {path!r}")
    return cur


def apply_json_patch(doc: dict[str, Any], ops: Any) -> dict[str, Any]:
    if not isinstance(ops, list):
        raise ApiError(400, "a JSON patch must be a list of operations")
    doc = copy.deepcopy(doc)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise ApiError(400, f"invalid JSON patch operation: {op!r}")
        tokens = _pointer(op["path"])
        if not tokens:
            raise ApiError(422, "patching the whole document is not supported")
        parent = _parent(doc, tokens, op["path"])
        key = tokens[-1]
        kind = op["op"]
        if kind in ("add", "replace"):
            if "value" not in op:
                raise ApiError(400, f"{kind} needs a value")
            if isinstance(parent, list):
                idx = len(parent) if key == "-" else int(key)
                if kind == "add":
                    parent.insert(idx, copy.deepcopy(op["value"]))
                else:
                    parent[idx] = copy.deepcopy(op["value"])
            else:
                if kind == "replace" and key not in parent:
                    raise ApiError(422, f"replace operation does not apply: {op['path']!r}")
                parent[key] = copy.deepcopy(op["value"])
        elif kind == "remove":
            if isinstance(parent, list):
                del parent[int(key)]
            elif key in parent:
                del parent[key]
            else:
                raise ApiError(
                    422, f"remove operation does not apply: doc is missing key: {op['path']!r}"
                )
        elif kind == "test":
            current = parent[int(key)] if isinstance(parent, list) else parent.get(key)
            if current != op.get("value"):
                raise ApiError(422, f"test operation failed at {op['path']!r}")
        else:
            raise ApiError(400, f"unsupported JSON patch operation {kind!r}")
    return doc


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386; a strategic merge patch does the same on maps (all the backend patches)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


PATCH_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
}


def _validate_meta(obj: dict[str, Any]) -> None:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        raise ApiError(422, "metadata must be an object")
    for field in ("labels", "annotations"):
        value = meta.get(field)
        if value is None:
            continue
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise ApiError(422, f"metadata.{field} must map strings to strings")
    for key, value in (meta.get("labels") or {}).items():
        if len(value) > 63:
            raise ApiError(422, f"metadata.labels: Invalid value {value!r} for {key}: too long")


# ---------------------------------------------------------------------------------------------
# the store


@dataclass(frozen=True)
class Change:
    rv: int
    resource: str
    namespace: str
    old: dict[str, Any] | None  # None: created
    new: dict[str, Any]  # on delete: the object as deleted, carrying the delete's rv
    deleted: bool = False


def watch_event(change: Change, matches: Callable[[dict[str, Any]], bool]) -> str | None:
    """The event type a selector watch sees for ``change`` (None: not delivered)."""
    was = change.old is not None and matches(change.old)
    now = not change.deleted and matches(change.new)
    if was and now:
        return "MODIFIED"
    if now:
        return "ADDED"
    if was:
        return "DELETED"
    return None


class Store:
    def __init__(self, history: int = 1000, first_rv: int = 1000) -> None:
        self.rv = first_rv
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.history: deque[Change] = deque()
        self.history_size = history
        self.compacted_rv = first_rv  # a watch from a version below this is Gone
        self.listeners: list[Callable[[Change], None]] = []

    # ---- history
    def _commit(
        self,
        resource: str,
        namespace: str,
        old: dict[str, Any] | None,
        new: dict[str, Any],
        deleted: bool = False,
    ) -> dict[str, Any]:
        self.rv += 1
        new["metadata"]["resourceVersion"] = str(self.rv)
        name = new["metadata"]["name"]
        if deleted:
            self.objects.pop((resource, namespace, name), None)
        else:
            self.objects[(resource, namespace, name)] = new
        change = Change(self.rv, resource, namespace, old, copy.deepcopy(new), deleted)
        self.history.append(change)
        while len(self.history) > self.history_size:
            self.compacted_rv = self.history.popleft().rv
        for listener in list(self.listeners):
            listener(change)
        return copy.deepcopy(new)

    def compact(self) -> None:
        """Forget all history: any watch from an older resourceVersion gets 410 Gone."""
        self.history.clear()
        self.compacted_rv = self.rv

    def changes_since(self, rv: int) -> list[Change]:
        """Retained changes after ``rv``; ``ApiError(410)`` when some were already forgotten."""
        if rv < self.compacted_rv:
            raise ApiError(410, f"too old resource version: {rv} ({self.compacted_rv})", "Expired")
        return [c for c in self.history if c.rv > rv]

    # ---- CRUD
    def _key(self, resource: str, namespace: str, name: str) -> tuple[str, str, str]:
        if resource not in KINDS:
            raise ApiError(404, f"the server could not find the requested resource {resource!r}")
        return (resource, namespace, name)

    def get(self, resource: str, namespace: str, name: str) -> dict[str, Any]:
        obj = self.objects.get(self._key(resource, namespace, name))
        if obj is None:
            raise ApiError(404, f'{resource} "{name}" not found')
        return copy.deepcopy(obj)

    def list(
        self, resource: str, namespace: str, selector: str | None = None
    ) -> tuple[list[dict[str, Any]], str]:
        self._key(resource, namespace, "")
        matches = parse_selector(selector)
        items = [
            copy.deepcopy(o)
            for (r, ns, _), o in sorted(self.objects.items())
            if r == resource and ns == namespace and matches(o)
        ]
        return items, str(self.rv)

    def create(self, resource: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("metadata"), dict):
            raise ApiError(400, "the body must be an object with metadata")
        name = body["metadata"].get("name")
        if not name:
            raise ApiError(422, "metadata.name: Required value")
        key = self._key(resource, namespace, name)
        if key in self.objects:
            raise ApiError(409, f'{resource} "{name}" already exists', "AlreadyExists")
        obj = copy.deepcopy(body)
        kind, api_version = KINDS[resource]
        obj["kind"], obj["apiVersion"] = kind, api_version
        meta = obj["metadata"]
        meta["namespace"] = namespace
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        _validate_meta(obj)
        return self._commit(resource, namespace, None, obj)

    def _write(
        self, resource: str, namespace: str, name: str, new: dict[str, Any], precondition: Any
    ) -> dict[str, Any]:
        old = self.objects.get(self._key(resource, namespace, name))
        if old is None:
            raise ApiError(404, f'{resource} "{name}" not found')
        if (
            precondition not in (None, "")
            and str(precondition) != old["metadata"]["resourceVersion"]
        ):
            raise ApiError(
                409,
                f'Operation cannot be fulfilled on {resource} "{name}": the object has been '
                "modified; please apply your changes to the latest version and try again",
            )
        new = copy.deepcopy(new)
        meta = new.setdefault("metadata", {})
        if not isinstance(meta, dict) or meta.get("name", name) != name:
            raise ApiError(400, "metadata.name does not match the URL")
        for field in ("name", "namespace", "uid", "creationTimestamp"):
            meta[field] = old["metadata"][field]
        new["kind"], new["apiVersion"] = KINDS[resource]
        _validate_meta(new)
        return self._commit(resource, namespace, copy.deepcopy(old), new)

    def replace(
        self, resource: str, namespace: str, name: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("metadata"), dict):
            raise ApiError(400, "the body must be an object with metadata")
        return self._write(resource, namespace, name, body, body["metadata"].get("resourceVersion"))

    def patch(
        self, resource: str, namespace: str, name: str, content_type: str, body: Any
    ) -> dict[str, Any]:
        kind = PATCH_TYPES.get(content_type.split(";")[0].strip().lower())
        if kind is None:
            raise ApiError(415, f"the body of the request was in an unknown format: {content_type}")
        current = self.get(resource, namespace, name)
        if kind == "json":
            new = apply_json_patch(current, body)
            precondition = None
        else:
            if not isinstance(body, dict):
                raise ApiError(400, "a merge patch must be a JSON object")
            new = apply_merge_patch(current, body)
            precondition = (body.get("metadata") or {}).get("resourceVersion")
        return self._write(resource, namespace, name, new, precondition)

    def delete(self, resource: str, namespace: str, name: str) -> dict[str, Any]:
        old = self.get(resource, namespace, name)
        return self._commit(resource, namespace, old, copy.deepcopy(old), deleted=True)

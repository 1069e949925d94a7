"""A small Kubernetes API client over HTTPS: enough to read back, create, apply, dry-run and review access.

The real tier and `dev.py verify` read the cluster through the API itself, not through a client library's
models, so what they check is exactly what the API server stored and said. Kubeconfigs are read as kubectl
reads them: the `KUBECONFIG` list or `~/.kube/config`, a named or the current context, certificate and
token credentials, files or inline `-data`.
"""
from __future__ import annotations

import base64
import json
import os
import ssl
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


class KubeError(Exception):
    """The API answered with an error status (or could not be reached)."""

    def __init__(self, code: int, reason: str, message: str, body: dict[str, Any] | None = None):
        self.code, self.reason, self.message, self.body = code, reason, message, body or {}
        super().__init__(f"{code} {reason}: {message}")


@dataclass(frozen=True)
class ResourceType:
    group_version: str
    name: str
    kind: str
    namespaced: bool


class Kube:
    """One API server, one identity. Paths, discovery and errors; no caching of objects."""

    def __init__(self, server: str, context: ssl.SSLContext, headers: dict[str, str] | None = None):
        self.server = server.rstrip("/")
        self._ssl = context
        self._headers = headers or {}
        self._types: dict[tuple[str, str], ResourceType] = {}
        # The `Warning` headers of the last successful call (admission warnings, deprecations), as kubectl prints them.
        self.warnings: list[str] = []

    # construction -------------------------------------------------------------------------------------------
    @classmethod
    def from_kubeconfig(cls, path: Path | str | None = None, context: str | None = None) -> "Kube":
        """As kubectl: `path`, else each file of $KUBECONFIG, else ~/.kube/config; `context` or the current one."""
        files = [Path(path)] if path else [Path(p) for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
        files = files or [Path.home() / ".kube" / "config"]
        merged: dict[str, list[dict[str, Any]]] = {"clusters": [], "users": [], "contexts": []}
        current = None
        for file in files:
            if not file.exists():
                continue
            doc = yaml.safe_load(file.read_text()) or {}
            for section in merged:
                merged[section] += doc.get(section) or []
            current = current or doc.get("current-context")
        name = context or current
        if not name:
            raise KubeError(0, "NoContext", f"no context given and no current-context in {', '.join(map(str, files))}")
        try:
            ctx = next(c["context"] for c in merged["contexts"] if c["name"] == name)
            cluster = next(c["cluster"] for c in merged["clusters"] if c["name"] == ctx["cluster"])
            user = next((u["user"] for u in merged["users"] if u["name"] == ctx.get("user")), {})
        except StopIteration:
            raise KubeError(0, "NoContext", f"context {name!r} (or its cluster) is not in "
                                            f"{', '.join(map(str, files))}") from None
        base = files[0].parent
        ssl_context = ssl.create_default_context()
        ca = _material(cluster, "certificate-authority", base)
        if ca:
            ssl_context.load_verify_locations(cafile=ca)
        if cluster.get("insecure-skip-tls-verify"):
            ssl_context.check_hostname = False
            ssl_context.verify_mode = ssl.CERT_NONE
        cert, key = _material(user, "client-certificate", base), _material(user, "client-key", base)
        if cert and key:
            ssl_context.load_cert_chain(cert, key)
        headers = {"Authorization": f"Bearer {user['token']}"} if user.get("token") else {}
        return cls(cluster["server"], ssl_context, headers)

    # transport ----------------------------------------------------------------------------------------------
    def request(self, method: str, path: str, body: Any = None, *, params: dict[str, str] | None = None,
                content_type: str = "application/json", timeout: float = 30) -> Any:
        """One API call; a 429 (the API server's "storage is (re)initializing" after a CRD change, or its rate
        limits) is retried as its Retry-After says, for at most `timeout` seconds in all."""
        url = self.server + path + (("?" + urllib.parse.urlencode(params)) if params else "")
        data = None
        if body is not None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        deadline = time.monotonic() + timeout
        while True:
            request = urllib.request.Request(url, data=data, method=method,
                                             headers={**self._headers, "Content-Type": content_type,
                                                      "Accept": "application/json"})
            try:
                with urllib.request.urlopen(request, context=self._ssl, timeout=timeout) as response:
                    payload = response.read()
                    self.warnings = response.headers.get_all("Warning") or []
                break
            except urllib.error.HTTPError as error:
                raw = error.read()
                wait = float(error.headers.get("Retry-After") or 1)
                if error.code == 429 and time.monotonic() + wait < deadline:
                    time.sleep(wait)
                    continue
                try:
                    status = json.loads(raw)
                except ValueError:
                    raise KubeError(error.code, error.reason, raw.decode(errors="replace")) from None
                raise KubeError(error.code, status.get("reason", ""), status.get("message", ""), status) from None
            except (urllib.error.URLError, OSError) as error:
                raise KubeError(0, "Unreachable", f"{self.server}: {error}") from None
        if not payload:
            return None
        try:
            return json.loads(payload)
        except ValueError:
            return payload.decode(errors="replace")

    # discovery ----------------------------------------------------------------------------------------------
    def resource_type(self, api_version: str, kind: str) -> ResourceType:
        cached = self._types.get((api_version, kind))
        if cached:
            return cached
        prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        listing = self.request("GET", prefix)
        for item in listing.get("resources", []):
            if "/" not in item["name"]:
                self._types[(api_version, item["kind"])] = ResourceType(api_version, item["name"], item["kind"],
                                                                        item["namespaced"])
        if (api_version, kind) not in self._types:
            raise KubeError(404, "NotFound", f"the server has no kind {kind} in {api_version}")
        return self._types[(api_version, kind)]

    def path(self, api_version: str, kind: str, name: str | None = None, namespace: str | None = None,
             subresource: str | None = None) -> str:
        rtype = self.resource_type(api_version, kind)
        out = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        if rtype.namespaced and namespace:
            out += f"/namespaces/{namespace}"
        out += f"/{rtype.name}"
        if name:
            out += f"/{name}"
        if subresource:
            out += f"/{subresource}"
        return out

    # verbs --------------------------------------------------------------------------------------------------
    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        return self.request("GET", self.path(api_version, kind, name, namespace))

    def find(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        try:
            return self.get(api_version, kind, name, namespace)
        except KubeError as error:
            if error.code == 404:
                return None
            raise

    def exists(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> bool:
        return self.find(api_version, kind, name, namespace) is not None

    def list(self, api_version: str, kind: str, namespace: str | None = None,
             selector: str | None = None) -> list[dict[str, Any]]:
        params = {"labelSelector": selector} if selector else None
        return self.request("GET", self.path(api_version, kind, namespace=namespace), params=params)["items"]

    def create(self, obj: dict[str, Any], *, dry_run: bool = False, field_manager: str | None = None,
               as_user: str | None = None, as_group: str | None = None) -> dict[str, Any]:
        meta = obj.get("metadata", {})
        params: dict[str, str] = {}
        if dry_run:
            params["dryRun"] = "All"
        if field_manager:
            params["fieldManager"] = field_manager
        path = self.path(obj["apiVersion"], obj["kind"], namespace=meta.get("namespace"))
        if as_user:
            return self.impersonating(as_user, as_group).request("POST", path, obj, params=params or None)
        return self.request("POST", path, obj, params=params or None)

    def apply(self, obj: dict[str, Any], *, field_manager: str, force: bool = False,
              subresource: str | None = None) -> dict[str, Any]:
        """Server-side apply as `field_manager` (a conflict with another manager raises 409 unless `force`)."""
        meta = obj["metadata"]
        params = {"fieldManager": field_manager}
        if force:
            params["force"] = "true"
        path = self.path(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"), subresource)
        return self.request("PATCH", path, obj, params=params, content_type="application/apply-patch+yaml")

    def patch(self, api_version: str, kind: str, name: str, patch: dict[str, Any], *, namespace: str | None = None,
              subresource: str | None = None, field_manager: str | None = None,
              patch_type: str = "merge") -> dict[str, Any]:
        content_type = {"merge": "application/merge-patch+json", "json": "application/json-patch+json",
                        "strategic": "application/strategic-merge-patch+json"}[patch_type]
        params = {"fieldManager": field_manager} if field_manager else None
        return self.request("PATCH", self.path(api_version, kind, name, namespace, subresource), patch,
                            params=params, content_type=content_type)

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None,
               *, missing_ok: bool = True) -> None:
        try:
            self.request("DELETE", self.path(api_version, kind, name, namespace),
                         {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"})
        except KubeError as error:
            if not (missing_ok and error.code == 404):
                raise

    def impersonating(self, user: str, group: str | None = None) -> "Kube":
        """The same server as another user, in at most one group (the admin may impersonate anyone)."""
        headers = {**self._headers, "Impersonate-User": user}
        if group:
            headers["Impersonate-Group"] = group
        clone = Kube(self.server, self._ssl, headers)
        clone._types = self._types
        return clone

    # questions ----------------------------------------------------------------------------------------------
    def ready(self) -> bool:
        try:
            return self.request("GET", "/readyz", timeout=5) == "ok"
        except KubeError:
            return False

    def crd_established(self, name: str) -> bool:
        crd = self.find("apiextensions.k8s.io/v1", "CustomResourceDefinition", name)
        conditions = ((crd or {}).get("status") or {}).get("conditions") or []
        return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

    def node_ready(self, name: str) -> bool:
        node = self.find("v1", "Node", name)
        conditions = ((node or {}).get("status") or {}).get("conditions") or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def access_review(self, user: str, groups: list[str], verb: str, resource: str, *, group: str = "",
                      namespace: str | None = None, subresource: str | None = None) -> bool:
        """What the authorizer says of one request (a SubjectAccessReview: RBAC itself, not a model of it)."""
        attributes: dict[str, Any] = {"verb": verb, "resource": resource, "group": group}
        if namespace:
            attributes["namespace"] = namespace
        if subresource:
            attributes["subresource"] = subresource
        review = self.request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", {
            "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": user, "groups": groups, "resourceAttributes": attributes}})
        return bool(review["status"].get("allowed"))


def _material(section: dict[str, Any], key: str, base: Path) -> str | None:
    """A certificate or key as a file path (inline `-data` written to a private temporary file)."""
    if section.get(f"{key}-data"):
        handle = tempfile.NamedTemporaryFile(prefix="kube-", suffix=".pem", delete=False)
        handle.write(base64.b64decode(section[f"{key}-data"]))
        handle.close()
        os.chmod(handle.name, 0o600)
        return handle.name
    if section.get(key):
        path = Path(section[key])
        return str(path if path.is_absolute() else base / path)
    return None

"""The resource being checked, as Analyze or AnalyzeStack delivered it, and the one shape of a message."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .access import UNKNOWN, get
from .tokens import CLUSTER_SCOPED, HELM_CHART_V4, HELM_RELEASE, TypeToken, parse_token

@dataclass(frozen=True, slots=True)
class ResourceView:
    """One resource as a policy sees it, whichever of Analyze or AnalyzeStack delivered it."""

    type: str
    props: Any
    name: str = ""
    urn: str = ""
    provider_props: Any = None

    @classmethod
    def from_args(cls, args: Any) -> ResourceView:
        provider = getattr(args, "provider", None)
        return cls(
            type=getattr(args, "resource_type", ""),
            props=getattr(args, "props", None),
            name=getattr(args, "name", "") or "",
            urn=getattr(args, "urn", "") or "",
            provider_props=getattr(provider, "props", None) if provider is not None else None,
        )

    @property
    def token(self) -> TypeToken | None:
        return parse_token(self.type)

    def namespace(self) -> Any:
        """The namespace the object lands in: ``metadata.namespace`` (``namespace`` for a Helm
        release), else the provider's default namespace, else ``default``. ``UNKNOWN`` if unknown;
        None for cluster-scoped kinds."""
        token = self.token
        if token is not None and token.kind in CLUSTER_SCOPED:
            return None
        if self.type in (HELM_RELEASE, HELM_CHART_V4):
            declared = get(self.props, "namespace")
        else:
            declared = get(get(self.props, "metadata"), "namespace")
        if declared is UNKNOWN:
            return UNKNOWN
        if isinstance(declared, str) and declared:
            return declared
        provider_ns = get(self.provider_props, "namespace")
        if provider_ns is UNKNOWN:
            return UNKNOWN
        if isinstance(provider_ns, str) and provider_ns:
            return provider_ns
        return "default"

    def object_name(self) -> str:
        if self.type in (HELM_RELEASE, HELM_CHART_V4):
            declared = get(self.props, "name")
        else:
            declared = get(get(self.props, "metadata"), "name")
        if isinstance(declared, str) and declared:
            return declared
        return self.name or "<unnamed>"

    def display(self) -> str:
        """``Deployment tenant-a/trainer``, ``ClusterRole ops``: what every message starts with."""
        token = self.token
        kind = token.class_name if token is not None else (self.type or "resource")
        namespace = self.namespace()
        name = self.object_name()
        if namespace is None:
            return f"{kind} {name}"
        if namespace is UNKNOWN:
            return f"{kind} <namespace unknown>/{name}"
        return f"{kind} {namespace}/{name}"


def violation(resource: str, subject: str | None, path: str, problem: str, fix: str, tag: str = "") -> str:
    """The one message shape: who, which field, what is wrong, what to change."""
    where = f"{resource}, {subject}" if subject else resource
    text = f"{where}: {path} {problem}. Fix: {fix}."
    return f"{text} [{tag}]" if tag else text

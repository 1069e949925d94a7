"""The pod-spec walker: the only one, so every policy that looks at pods finds the same containers under
the same paths."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .access import UNKNOWN, get, get_in, is_mapping, seq
from .resource import ResourceView
from .tokens import POD_PATHS

CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")  # PSA's visiting order
_CONTAINER_WORD = {"containers": "container", "initContainers": "init container",
                   "ephemeralContainers": "ephemeral container"}


@dataclass(frozen=True, slots=True)
class ContainerRef:
    """One container of a pod spec, with the path that names it in messages."""

    list_name: str
    index: int
    name: str
    body: Any
    path: str

    def __str__(self) -> str:
        label = f'{_CONTAINER_WORD[self.list_name]} "{self.name}"' if self.name else _CONTAINER_WORD[self.list_name]
        return f"{label} ({self.list_name}[{self.index}])"


@dataclass(slots=True)
class PodSpecRef:
    """A pod spec found in a workload: the spec, its pod metadata and its containers, with paths."""

    spec: Any
    path: str
    metadata: Any
    metadata_path: str
    containers: list[ContainerRef] = field(default_factory=list)
    is_patch: bool = False


def pod_spec(view: ResourceView, unknowns: list[str]) -> PodSpecRef | None:
    """The pod spec of a pod-bearing resource (None if it is not one or has no spec). Unknown parts
    on the way are added to ``unknowns`` by path."""
    token = view.token
    if token is None or not token.is_workload:
        return None
    meta_keys, spec_keys = POD_PATHS[token.kind]
    spec: Any = view.props
    for depth, key in enumerate(spec_keys):
        spec = get(spec, key)
        if spec is UNKNOWN:
            unknowns.append(".".join(spec_keys[: depth + 1]))
            return None
        if spec is None:
            return None
    if not is_mapping(spec):
        return None
    metadata = get_in(view.props, meta_keys)
    spec_path = ".".join(spec_keys)
    ref = PodSpecRef(spec=spec, path=spec_path, metadata=metadata, metadata_path=".".join(meta_keys),
                     is_patch=token.is_patch)
    for list_name in CONTAINER_LISTS:
        items = seq(get(spec, list_name))
        list_path = f"{spec_path}.{list_name}"
        if items is UNKNOWN:
            unknowns.append(list_path)
            continue
        for index, body in enumerate(items):
            if body is UNKNOWN:
                unknowns.append(f"{list_path}[{index}]")
                continue
            if not is_mapping(body):
                continue
            name = get(body, "name")
            ref.containers.append(ContainerRef(list_name, index, name if isinstance(name, str) else "",
                                               body, f"{list_path}[{index}]"))
    return ref

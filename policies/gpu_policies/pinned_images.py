"""container-images-pinned: every container image names a tag other than ``latest``, or a digest.

Covers every pod-bearing kind and all three container lists. An image with no tag means ``:latest``.
With ``requireDigest`` a tag alone is not enough (tags can be moved; digests cannot).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from pulumi_policy import PolicyConfigSchema, Severity

from .access import UNKNOWN, get, show
from .config import ConfigReader
from .guard import resource_policy
from .outcome import Outcome, not_applicable
from .pods import pod_spec
from .resource import ResourceView, violation

NAME = "container-images-pinned"

_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}\Z")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\Z")


@dataclass(frozen=True)
class ImagesConfig:
    require_digest: bool = False


def parse_config(reader: ConfigReader) -> ImagesConfig:
    return ImagesConfig(require_digest=reader.boolean("requireDigest", False))


def image_problem(image: object, require_digest: bool) -> tuple[str, str] | None:
    """(problem, fix) for an image reference that is not pinned, or None when it is."""
    if not isinstance(image, str) or not image.strip():
        return f"is {show(image)}", "set an image with a version tag or a digest"
    name, at, digest = image.partition("@")
    if at:
        if _DIGEST.match(digest):
            return None
        return (f"is {show(image)}, whose digest is malformed",
                'use "<image>@sha256:<64 hex digits>" as the registry reports it')
    last = name.rsplit("/", 1)[-1]
    repository, colon, tag = last.partition(":")
    base = name[: len(name) - len(last)] + repository
    if not colon:
        return (f"is {show(image)}, which has no tag and so means {base}:latest",
                f'pin a version tag or a digest, e.g. "{base}:<version>" or "{base}@sha256:<digest>"')
    if tag.lower() == "latest":
        return (f"is {show(image)}, and latest moves whenever the image is rebuilt",
                f'pin a version tag or a digest, e.g. "{base}:<version>" or "{base}@sha256:<digest>"')
    if not _TAG.match(tag):
        return f"is {show(image)}, whose tag is not a valid tag", "use a version tag or a digest"
    if require_digest:
        return (f"is {show(image)}, pinned by tag only, and requireDigest is set",
                f'add the digest, e.g. "{name}@sha256:<digest>"')
    return None


def evaluate(view: ResourceView, config: ImagesConfig) -> Outcome:
    token = view.token
    if token is None or not token.is_workload:
        return not_applicable("applies only to pod-bearing kinds")
    unknowns: list[str] = []
    pod = pod_spec(view, unknowns)
    outcome = Outcome(subject=view.display(), unknowns=unknowns)
    if pod is None:
        return outcome
    for container in pod.containers:
        image = get(container.body, "image")
        path = f"{container.path}.image"
        if image is UNKNOWN:
            unknowns.append(path)
            continue
        if image is None and pod.is_patch:
            continue  # a patch that leaves the image alone does not change it
        problem = image_problem(image, config.require_digest)
        if problem is not None:
            outcome.add(violation(outcome.subject, str(container), path, problem[0], problem[1]))
    return outcome


POLICY = resource_policy(
    name=NAME,
    description="Every container image is pinned: a tag other than latest, or a digest.",
    evaluate=evaluate,
    parse_config=parse_config,
    config_schema=PolicyConfigSchema(properties={
        "requireDigest": {"type": "boolean", "default": False,
                          "description": "Require a digest (image@sha256:...); a tag alone then fails."},
    }),
    severity=Severity.MEDIUM,
    remediation=('Give every container image an explicit version tag ("registry/image:1.2.3") or, better, a '
                 'digest ("registry/image@sha256:..."); never "latest" or no tag.'),
)

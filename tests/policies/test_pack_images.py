"""container-images-pinned: every container image of every pod-bearing kind has a tag other than latest, or
a digest (and, with requireDigest, a digest)."""
from __future__ import annotations

import pytest
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE as U

from gpu_policies import pinned_images

from policy_factories import CONTAINER_LISTS, KINDS, WORKLOAD_TOKENS, check, restricted_pod_spec, spec_path, workload

POLICY = pinned_images.POLICY
DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize("image", [
    "registry.example/app:1.2.3", "nvcr.io/nvidia/cuda:12.9.1-base-ubuntu24.04", "app:v2",
    f"app@{DIGEST}", f"app:latest@{DIGEST}", f"registry.example:5000/team/app:1@{DIGEST}",
])
def test_pinned_images_pass(image: str) -> None:
    spec = restricted_pod_spec()
    spec["containers"][0]["image"] = image
    assert check(POLICY, WORKLOAD_TOKENS["Deployment"], workload("Deployment", spec)).messages == []


@pytest.mark.parametrize("image, problem, fix", [
    ("nginx", 'is "nginx", which has no tag and so means nginx:latest',
     'pin a version tag or a digest, e.g. "nginx:<version>" or "nginx@sha256:<digest>"'),
    ("nginx:latest", 'is "nginx:latest", and latest moves whenever the image is rebuilt',
     'pin a version tag or a digest, e.g. "nginx:<version>" or "nginx@sha256:<digest>"'),
    ("app:LATEST", 'is "app:LATEST", and latest moves whenever the image is rebuilt',
     'pin a version tag or a digest, e.g. "app:<version>" or "app@sha256:<digest>"'),
    ("registry:5000/team/app", 'is "registry:5000/team/app", which has no tag and so means '
                               "registry:5000/team/app:latest",
     'pin a version tag or a digest, e.g. "registry:5000/team/app:<version>" or '
     '"registry:5000/team/app@sha256:<digest>"'),
    ("app@sha256:1234", 'is "app@sha256:1234", whose digest is malformed',
     'use "<image>@sha256:<64 hex digits>" as the registry reports it'),
    ("app:", 'is "app:", whose tag is not a valid tag', "use a version tag or a digest"),
    ("app:1.0\n", 'is "app:1.0\\n", whose tag is not a valid tag', "use a version tag or a digest"),
    ("", 'is ""', "set an image with a version tag or a digest"),
    (None, "is not set", "set an image with a version tag or a digest"),
    (7, "is 7", "set an image with a version tag or a digest"),
])
def test_unpinned_images_fail_with_exact_message(image: object, problem: str, fix: str) -> None:
    spec = restricted_pod_spec()
    spec["containers"][0]["image"] = image
    reported = check(POLICY, WORKLOAD_TOKENS["Deployment"], workload("Deployment", spec, name="web"))
    assert reported.messages == [
        f'Deployment tenant-a/web, container "main" (containers[0]): spec.template.spec.containers[0].image '
        f"{problem}. Fix: {fix}."]


@pytest.mark.parametrize("list_name", CONTAINER_LISTS)
@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_and_container_list_is_checked(kind: str, list_name: str) -> None:
    spec = restricted_pod_spec()
    spec[list_name][0]["image"] = "busybox:latest"
    reported = check(POLICY, WORKLOAD_TOKENS[kind], workload(kind, spec))
    assert [m.split(": ", 2)[1].split(" ")[0] for m in reported.messages] == [f"{spec_path(kind)}.{list_name}[0].image"]


def test_require_digest() -> None:
    spec = restricted_pod_spec()
    spec["containers"][0]["image"] = f"app:1@{DIGEST}"
    reported = check(POLICY, WORKLOAD_TOKENS["Pod"], workload("Pod", spec, name="p"), config={"requireDigest": True})
    assert reported.messages == [
        'Pod tenant-a/p, init container "init" (initContainers[0]): spec.initContainers[0].image is '
        '"registry.example/app:1.2.3", pinned by tag only, and requireDigest is set. Fix: add the digest, e.g. '
        '"registry.example/app:1.2.3@sha256:<digest>".',
        'Pod tenant-a/p, ephemeral container "debug" (ephemeralContainers[0]): spec.ephemeralContainers[0].image is '
        '"registry.example/app:1.2.3", pinned by tag only, and requireDigest is set. Fix: add the digest, e.g. '
        '"registry.example/app:1.2.3@sha256:<digest>".']


def test_require_digest_must_be_a_boolean() -> None:
    reported = check(POLICY, WORKLOAD_TOKENS["Pod"], workload("Pod"), config={"requireDigest": "yes"})
    assert reported.messages == [
        'the policy-pack config for container-images-pinned is invalid: config key "requireDigest" is "yes"; give '
        "true or false. This run uses the policy's defaults instead; fix the config file passed with "
        "--policy-pack-config."]


def test_unknown_image_is_reported_and_patch_without_image_passes() -> None:
    spec = restricted_pod_spec()
    spec["containers"][0]["image"] = U
    reported = check(POLICY, WORKLOAD_TOKENS["Job"], workload("Job", spec), proxy=True)
    assert reported.unknown is not None and reported.unknown.startswith(
        "Job tenant-a/app: spec.template.spec.containers[0].image is unknown until the update runs")
    patch = workload("Deployment", {"containers": [{"name": "main", "resources": {"limits": {"cpu": "1"}}}]})
    assert check(POLICY, WORKLOAD_TOKENS["Deployment"] + "Patch", patch).messages == []
    assert check(POLICY, WORKLOAD_TOKENS["Deployment"], patch).messages[0].endswith(
        "image is not set. Fix: set an image with a version tag or a digest.")

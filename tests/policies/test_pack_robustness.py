"""No input makes a policy raise. Hypothesis feeds every validator JSON-like values of any shape: realistic
resources with random parts replaced (None, wrong types, empty lists, unknown sentinels) and free-form
objects, plain and behind pulumi-policy's unknown-checking proxy. The evaluators themselves must never
raise (the guard that would turn a bug into a fail-closed message must have nothing to catch), and the
validators may only end in pulumi-policy's own signals (not applicable, unknown during preview)."""
from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pulumi_policy.policy import _NotApplicableError
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

from gpu_policies import (
    driver_documented, driver_pinning, gpu_quota, pinned_images, pod_security, pod_security_exemptions, rbac_bindings,
    rbac_wildcards,
)
from gpu_policies.access import UNKNOWN_SENTINELS
from gpu_policies.resource import ResourceView
from gpu_policies.tokens import POD_PATHS

from policy_factories import WORKLOAD_TOKENS, resource_args, stack_args, workload

RESOURCE_POLICIES = [driver_pinning.POLICY, driver_documented.POLICY, pod_security.POLICY,
                     pod_security_exemptions.POLICY, pinned_images.POLICY, rbac_wildcards.POLICY]
STACK_POLICIES = [gpu_quota.POLICY, rbac_bindings.POLICY]
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

VOCABULARY = [
    "metadata", "name", "namespace", "annotations", "spec", "template", "jobTemplate", "containers", "initContainers",
    "ephemeralContainers", "securityContext", "capabilities", "add", "drop", "privileged", "allowPrivilegeEscalation",
    "runAsNonRoot", "runAsUser", "seccompProfile", "appArmorProfile", "type", "seLinuxOptions", "user", "role",
    "procMount", "windowsOptions", "hostProcess", "hostNetwork", "hostPID", "hostIPC", "sysctls", "volumes",
    "hostPath", "emptyDir", "ports", "hostPort", "livenessProbe", "httpGet", "tcpSocket", "host", "lifecycle",
    "preStop", "postStart", "os", "image", "resources", "limits", "requests", "nvidia.com/gpu", "values", "driver",
    "enabled", "version", "usePrecompiled", "nvidiaDriverCRD", "deployDefaultCR", "chart", "valueYamlFiles", "rules",
    "verbs", "apiGroups", "roleRef", "subjects", "kind", "hard", "scopes", "scopeSelector", "requests.nvidia.com/gpu",
]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-2, 70000), st.floats(allow_nan=True), st.sampled_from(VOCABULARY),
    st.text(max_size=12), st.sampled_from(sorted(UNKNOWN_SENTINELS)),
    st.sampled_from(["latest", "580.173.02", "v26.7.0", "*", "ALL", "Unconfined", "windows", "0", ""]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.one_of(st.sampled_from(VOCABULARY), st.text(max_size=6)), inner,
                                            max_size=5)),
    max_leaves=25,
)
TYPES = sorted({*WORKLOAD_TOKENS.values(), *(t + "Patch" for t in WORKLOAD_TOKENS.values()),
                "kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart", "kubernetes:nvidia.com/v1:ClusterPolicy",
                "kubernetes:nvidia.com/v1alpha1:NVIDIADriver", "kubernetes:core/v1:ResourceQuota",
                "kubernetes:core/v1:Namespace", "kubernetes:rbac.authorization.k8s.io/v1:Role",
                "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole", "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
                "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding", "", "kubernetes", "a:b:c:d", "x:y/z:"})


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Usually a well-formed value, sometimes anything at all (wrong type, None, unknown sentinel)."""
    return st.one_of(strategy, strategy, json_values)


def obj(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """An object whose every field may be missing, well-formed or junk."""
    return st.fixed_dictionaries({}, optional={key: maybe(value) for key, value in fields.items()})


def listing(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    return st.lists(maybe(strategy), max_size=3)


words = st.sampled_from(["ALL", "NET_BIND_SERVICE", "CHOWN", "NET_RAW", "RuntimeDefault", "Localhost", "Unconfined",
                         "Default", "Unmasked", "container_t", "spc_t", "windows", "linux", "*", "get", "pods", "",
                         "cluster-admin", "User", "Group", "ServiceAccount", "ClusterRole", "Role", "gpu-operator",
                         "tenant-a", "latest", "580", "580.173.02", "580.173.02-ubuntu22.04", "v26.7.0", "~26",
                         "nginx", "app:1@sha256:" + "a" * 64, "kernel.msgmax", "net.ipv4.tcp_rmem", "10.0.0.1"])
def one_of_words(*choices: str) -> st.SearchStrategy[str]:
    return st.sampled_from(choices)


handler = obj(httpGet=obj(host=words, port=st.integers(0, 70000)), tcpSocket=obj(host=words, port=words))
security_context = obj(
    privileged=st.booleans(), allowPrivilegeEscalation=st.booleans(), runAsNonRoot=st.booleans(),
    runAsUser=st.integers(-1, 2), procMount=words, capabilities=obj(add=listing(words), drop=listing(words)),
    seccompProfile=obj(type=words, localhostProfile=words), appArmorProfile=obj(type=words),
    seLinuxOptions=obj(type=words, user=words, role=words, level=words), windowsOptions=obj(hostProcess=st.booleans()),
    sysctls=listing(obj(name=one_of_words("kernel.msgmax", "net.ipv4.tcp_rmem"), value=words)))
container = obj(
    name=words, image=words, securityContext=security_context,
    ports=listing(obj(containerPort=st.integers(0, 70000), hostPort=st.integers(0, 70000))),
    livenessProbe=handler, readinessProbe=handler, startupProbe=handler, lifecycle=obj(postStart=handler, preStop=handler),
    resources=obj(limits=st.dictionaries(st.sampled_from(["nvidia.com/gpu", "cpu"]), maybe(words), max_size=2),
                  requests=st.dictionaries(st.sampled_from(["nvidia.com/gpu", "memory"]), maybe(words), max_size=2)))
volume = obj(name=words, hostPath=obj(path=words), emptyDir=st.just({}), nfs=obj(server=words), secret=obj(secretName=words),
             image=obj(reference=words))
pod_spec_strategy = obj(
    containers=listing(container), initContainers=listing(container), ephemeralContainers=listing(container),
    securityContext=security_context, volumes=listing(volume), hostNetwork=st.booleans(), hostPID=st.booleans(),
    hostIPC=st.booleans(), os=obj(name=words))
metadata = obj(name=words, namespace=words,
               annotations=st.dictionaries(st.sampled_from(["container.apparmor.security.beta.kubernetes.io/main", "x"]),
                                           maybe(words), max_size=2))
driver = obj(enabled=st.booleans(), version=words, usePrecompiled=st.booleans(),
             nvidiaDriverCRD=obj(enabled=st.booleans(), deployDefaultCR=st.booleans()))
RBAC = "kubernetes:rbac.authorization.k8s.io/v1:"
OTHERS = st.one_of(
    st.tuples(st.sampled_from(["kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart"]),
              obj(chart=st.sampled_from(["gpu-operator", "nvidia/gpu-operator", "x/gpu-operator-v26.7.0.tgz", "other"]),
                  version=words, namespace=words, name=words, values=obj(driver=driver),
                  valueYamlFiles=st.lists(json_values, max_size=1))),
    st.tuples(st.just("kubernetes:nvidia.com/v1:ClusterPolicy"),
              obj(metadata=metadata, spec=obj(driver=obj(useNvidiaDriverCRD=st.booleans(), enabled=st.booleans(),
                                                         version=words, usePrecompiled=st.booleans())))),
    st.tuples(st.just("kubernetes:nvidia.com/v1alpha1:NVIDIADriver"),
              obj(metadata=metadata, spec=obj(version=words, usePrecompiled=st.booleans()))),
    st.tuples(st.sampled_from([RBAC + "Role", RBAC + "ClusterRole", RBAC + "ClusterRolePatch"]),
              obj(metadata=metadata, rules=listing(obj(apiGroups=listing(words), resources=listing(words),
                                                       verbs=listing(words))))),
    st.tuples(st.sampled_from([RBAC + "RoleBinding", RBAC + "ClusterRoleBinding"]),
              obj(metadata=metadata,
                  roleRef=obj(kind=one_of_words("ClusterRole", "Role"), name=one_of_words("cluster-admin", "r", "ops")),
                  subjects=listing(obj(kind=one_of_words("User", "Group", "ServiceAccount"), name=words)))),
    st.tuples(st.sampled_from(["kubernetes:core/v1:ResourceQuota", "kubernetes:core/v1:ResourceQuotaPatch"]),
              obj(metadata=metadata, spec=obj(hard=st.dictionaries(st.sampled_from(
                  ["requests.nvidia.com/gpu", "nvidia.com/gpu", "pods"]), maybe(words), max_size=2),
                  scopes=listing(words), scopeSelector=json_values))),
)


@st.composite
def shaped_resource(draw: st.DrawFn) -> tuple[str, Any]:
    """A resource whose type and shape belong together, every field missing, well-formed or junk."""
    if draw(st.booleans()):
        kind = draw(st.sampled_from(sorted(WORKLOAD_TOKENS)))
        type_ = WORKLOAD_TOKENS[kind] + draw(st.sampled_from(["", "", "Patch"]))
        props = workload(kind, {})
        meta_keys, spec_keys = POD_PATHS[kind]
        target = props
        for key in spec_keys[:-1]:
            target = target.setdefault(key, {})
        target[spec_keys[-1]] = draw(maybe(pod_spec_strategy))
        if draw(st.booleans()):
            props["metadata"] = draw(maybe(metadata))
        return type_, props
    return draw(OTHERS)


def shaped_props() -> st.SearchStrategy[Any]:
    return shaped_resource().map(lambda pair: pair[1])


any_props = st.one_of(shaped_props(), json_values)
provider_props = st.one_of(st.none(), st.dictionaries(st.sampled_from(["namespace", "kubeconfig"]), json_values, max_size=2))


@FUZZ
@given(resource=shaped_resource(), provider=provider_props, proxy=st.booleans())
def test_resource_evaluators_never_raise(resource: tuple[str, Any], provider: Any, proxy: bool) -> None:
    _evaluate_all(resource, provider, proxy)


@settings(max_examples=150, deadline=None)
@given(resource=st.tuples(st.sampled_from(TYPES), any_props), provider=provider_props, proxy=st.booleans())
def test_resource_evaluators_never_raise_on_free_form_input(resource: tuple[str, Any], provider: Any,
                                                            proxy: bool) -> None:
    _evaluate_all(resource, provider, proxy)


def _evaluate_all(resource: tuple[str, Any], provider: Any, proxy: bool) -> None:
    type_, props = resource
    wrapped = unknown_checking_proxy(copy.deepcopy(props)) if proxy and isinstance(props, dict) else props
    view = ResourceView(type_, wrapped, name="fuzz", urn="urn:fuzz", provider_props=provider)
    for policy in RESOURCE_POLICIES:
        config, _ = policy.load_config({})
        outcome = policy.evaluate(view, config)
        assert all(isinstance(message, str) and message for message, _ in outcome.violations)
        assert all(isinstance(path, str) for path in outcome.unknowns)


@FUZZ
@given(resource=st.one_of(shaped_resource(), st.tuples(st.sampled_from(TYPES), st.dictionaries(
    st.sampled_from(VOCABULARY), json_values, max_size=4))), proxy=st.booleans())
def test_validators_end_only_in_sdk_signals_and_never_in_the_guard(resource: tuple[str, Any], proxy: bool) -> None:
    type_, props = resource
    if not isinstance(props, dict):
        props = {"spec": props}
    for policy in RESOURCE_POLICIES:
        messages: list[str] = []
        args = resource_args(type_, copy.deepcopy(props), proxy=proxy)
        try:
            policy.validate(args, lambda message, urn=None: messages.append(message))
        except (_NotApplicableError, UnknownValueError):
            pass
        assert not any("internal error" in m for m in messages), messages


@FUZZ
@given(resources=st.lists(st.one_of(shaped_resource().map(lambda r: (r[0], "r", r[1])),
                                    st.tuples(st.sampled_from(TYPES), st.text(max_size=5), any_props)), max_size=6))
def test_stack_evaluators_never_raise(resources: list[tuple[str, str, Any]]) -> None:
    views = [ResourceView(t, p, name=n, urn=f"urn:{i}") for i, (t, n, p) in enumerate(resources)]
    proxied = [ResourceView(t, unknown_checking_proxy(copy.deepcopy(p)) if isinstance(p, dict) else p, name=n)
               for t, n, p in resources]
    for policy in STACK_POLICIES:
        config, _ = policy.load_config({})
        for batch in (views, proxied):
            outcome = policy.evaluate(batch, config)
            assert all(isinstance(message, str) for message, _ in outcome.violations)
        messages: list[str] = []
        try:
            policy.validate(stack_args([(t, n, p) for t, n, p in resources]),
                            lambda message, urn=None: messages.append(message))
        except (_NotApplicableError, UnknownValueError):
            pass
        assert not any("internal error" in m for m in messages), messages


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out += _paths(item, prefix + (index,))
    return out


@st.composite
def mutated(draw: st.DrawFn, baseline: Any) -> Any:
    """``baseline`` with one to three of its parts replaced by anything at all, or removed."""
    value = copy.deepcopy(baseline)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(value)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = value
        for key in path[:-1]:
            parent = parent[key]
        if isinstance(parent, dict) and draw(st.integers(0, 3)) == 0:
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(json_values)
    return value


RELEASE_BASELINE = {"chart": "gpu-operator", "version": "v26.7.0", "namespace": "gpu-operator", "name": "gpu-operator",
                    "values": {"driver": {"enabled": True, "version": "580.173.02", "usePrecompiled": False,
                                          "nvidiaDriverCRD": {"enabled": False, "deployDefaultCR": True}}}}
GPU_SPEC = {"containers": [{"name": "main", "image": "a:1", "resources": {"limits": {"nvidia.com/gpu": "1"}}}],
            "initContainers": [{"name": "init", "image": "a:1", "resources": {"requests": {"nvidia.com/gpu": "1"}}}]}
# policy -> [(type, baseline props)]; a stack policy gets all of them as one stack
TARGETED: dict[str, list[tuple[str, Any]]] = {
    driver_pinning.NAME: [("kubernetes:helm.sh/v3:Release", RELEASE_BASELINE)],
    driver_documented.NAME: [("kubernetes:helm.sh/v3:Release", RELEASE_BASELINE)],
    "cluster-policy": [("kubernetes:nvidia.com/v1:ClusterPolicy", {"metadata": {"name": "cp"}, "spec": {"driver": {
        "enabled": True, "useNvidiaDriverCRD": False, "usePrecompiled": False, "version": "580.173.02"}}})],
    "nvidia-driver": [("kubernetes:nvidia.com/v1alpha1:NVIDIADriver", {"metadata": {"name": "d"}, "spec": {
        "usePrecompiled": True, "version": "580"}})],
    rbac_wildcards.NAME: [(RBAC + "ClusterRole", {"metadata": {"name": "r"}, "rules": [
        {"apiGroups": [""], "resources": ["pods", "*/scale"], "verbs": ["get"]}]})],
    rbac_bindings.NAME: [
        (RBAC + "ClusterRole", {"metadata": {"name": "wide"}, "rules": [{"apiGroups": ["*"], "resources": ["*"],
                                                                         "verbs": ["*"]}]}),
        (RBAC + "RoleBinding", {"metadata": {"name": "b", "namespace": "n"}, "roleRef": {"kind": "ClusterRole",
                                                                                        "name": "wide"},
                                "subjects": [{"kind": "User", "name": "u"}]}),
        (RBAC + "ClusterRoleBinding", {"metadata": {"name": "a"}, "roleRef": {"kind": "ClusterRole",
                                                                              "name": "cluster-admin"},
                                       "subjects": [{"kind": "Group", "name": "g"},
                                                    {"kind": "ServiceAccount", "name": "s", "namespace": "n"}]})],
    gpu_quota.NAME: [
        ("kubernetes:apps/v1:Deployment", {"metadata": {"name": "t", "namespace": "tenant-a"},
                                           "spec": {"template": {"spec": GPU_SPEC}}}),
        ("kubernetes:core/v1:ResourceQuota", {"metadata": {"name": "q", "namespace": "tenant-a"},
                                              "spec": {"hard": {"requests.nvidia.com/gpu": "2"}, "scopes": []}}),
        ("kubernetes:core/v1:ResourceQuota", {"metadata": {"name": "s", "namespace": "tenant-a"},
                                              "spec": {"hard": {"limits.nvidia.com/gpu": "2"}, "scopes": ["BestEffort"]}})],
}
POLICIES_BY_TARGET = {
    driver_pinning.NAME: [driver_pinning.POLICY], driver_documented.NAME: [driver_documented.POLICY],
    "cluster-policy": [driver_pinning.POLICY], "nvidia-driver": [driver_pinning.POLICY],
    rbac_wildcards.NAME: [rbac_wildcards.POLICY], rbac_bindings.NAME: [rbac_bindings.POLICY],
    gpu_quota.NAME: [gpu_quota.POLICY],
}


@pytest.mark.parametrize("target", sorted(TARGETED))
def test_each_policy_survives_its_own_resources_with_parts_replaced(target: str) -> None:
    """Targeted: the policy's own resources, mostly intact, so the junk lands where the policy reads."""
    resources = TARGETED[target]

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(props=mutated([props for _, props in resources]))
    def fuzz(props: list[Any]) -> None:
        verdicts = []
        for proxy in (False, True):
            wrapped = [unknown_checking_proxy(p) if proxy and isinstance(p, dict) else p for p in copy.deepcopy(props)]
            views = [ResourceView(t, p, name=f"r{i}", urn=f"urn:{i}")
                     for i, ((t, _), p) in enumerate(zip(resources, wrapped))]
            outcomes = []
            for policy in POLICIES_BY_TARGET[target]:
                config, _ = policy.load_config({})
                if policy in STACK_POLICIES:
                    outcomes.append(policy.evaluate(views, config))
                else:
                    outcomes += [policy.evaluate(view, config) for view in views]
            verdicts.append([(o.violations, o.unknowns, o.not_applicable) for o in outcomes])
        assert verdicts[0] == verdicts[1]  # plain dicts and the SDK's proxies are judged alike

    fuzz()


@FUZZ
@given(config=st.dictionaries(st.one_of(st.sampled_from([
    "defaultLevel", "namespaceLevels", "exemptions", "allowedDriverVersions", "additionalDocumented", "requireDigest",
    "gpuResources", "exceptions", "privilegedRoles", "subjectKinds", "breakGlass", "enforcementLevel"]),
    st.text(max_size=6)), json_values, max_size=5))
def test_config_parsers_never_raise_and_explain_every_rejection(config: dict) -> None:
    for policy in RESOURCE_POLICIES + STACK_POLICIES:
        parsed, errors = policy.load_config(config)
        assert parsed is not None or policy is pod_security_exemptions.POLICY
        assert all(isinstance(e, str) and e.startswith('config key "') for e in errors)


@FUZZ
@given(resources=st.lists(shaped_resource(), min_size=1, max_size=4))
def test_verdicts_are_the_same_on_plain_dicts_and_behind_the_sdk_proxy(resources: list[tuple[str, Any]]) -> None:
    """Unit tests build plain dicts; the SDK hands proxies. Every policy must judge both alike (an empty
    proxied list must not compare unequal to [], an unknown must be unknown either way)."""
    def views(proxy: bool) -> list[ResourceView]:
        return [ResourceView(t, unknown_checking_proxy(copy.deepcopy(p)) if proxy and isinstance(p, dict) else p,
                             name=f"r{i}", urn=f"urn:{i}") for i, (t, p) in enumerate(resources)]

    plain, proxied = views(False), views(True)
    for policy in RESOURCE_POLICIES:
        config, _ = policy.load_config({})
        for a, b in zip(plain, proxied):
            left, right = policy.evaluate(a, config), policy.evaluate(b, config)
            assert (left.violations, left.unknowns, left.not_applicable) == \
                   (right.violations, right.unknowns, right.not_applicable), policy.name
    for policy in STACK_POLICIES:
        config, _ = policy.load_config({})
        left, right = policy.evaluate(plain, config), policy.evaluate(proxied, config)
        assert (left.violations, left.unknowns, left.not_applicable) == \
               (right.violations, right.unknowns, right.not_applicable), policy.name

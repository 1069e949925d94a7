"""GPU tenancy: the config rules, every object the component declares, the lab's inventory, the Kubernetes
schemas, and the policy pack's verdict on the lab's tenancy objects.

Component tests return an Output of the child resources' urns (a component's own urn resolves before its
children register), so a failing assertion inside `apply` fails the test.
"""
from __future__ import annotations

import importlib
import json
import pkgutil
from decimal import Decimal
from typing import Any

import pulumi
import pytest

from components.platform import GpuPlatform
from components.sharing import SharingConfig
from components.tenancy import Tenancy, cpu_cores, gpu_resources, memory_bytes
from tests.factories import DELETE, ROOT, compiled, lab_raw, lab_with, mutate, problems, stack_file
from tools.k8s_schema import validate
from tools.mockrun import ProgramRun, Recorder, Registration, read_stack_file, run_program

KUBERNETES_VERSION = "1.34"
TENANCY_TYPES = {"gpu-platform:tenancy:Tenancy", "gpu-platform:tenancy:TenantNamespace"}
ROLE = "kubernetes:rbac.authorization.k8s.io/v1:Role"
CLUSTER_ROLE = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole"
ROLE_BINDING = "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding"
CLUSTER_ROLE_BINDING = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding"
QUOTA, LIMIT_RANGE = "kubernetes:core/v1:ResourceQuota", "kubernetes:core/v1:LimitRange"
NAMESPACE, PRIORITY_CLASS = "kubernetes:core/v1:Namespace", "kubernetes:scheduling.k8s.io/v1:PriorityClass"
READ = ["get", "list", "watch"]
WRITE = ["get", "list", "watch", "create", "update", "patch", "delete"]
SYSTEM_CLASSES = ["system-cluster-critical", "system-node-critical"]


# --- config --------------------------------------------------------------------------------------------------------

def test_the_lab_tenancy_config_is_valid_as_written():
    tenancy = compiled().stack.tenancy
    assert tenancy is not None
    assert tenancy.groups == {"infrastructure": "lab:infrastructure", "security": "lab:security",
                              "operations": "lab:operations", "dataScience": "lab:data-science"}
    assert [(pc.name, pc.value, pc.preemption_policy) for pc in tenancy.priority_classes] == [
        ("gpu-inference-high", 100000, "PreemptLowerPriority"), ("gpu-batch-preemptible", 1000, "Never")]
    assert [(t.namespace, t.owner, t.quota.gpu, t.allow_exec) for t in tenancy.tenants] == [
        ("ai-ml", "dataScience", 2, False), ("sdr", "dataScience", 2, False)]


def test_tenancy_is_optional():
    assert compiled(lab_with(tenancy=DELETE)).stack.tenancy is None


def test_quantities_given_as_yaml_numbers_become_the_same_strings():
    tenant = compiled(lab_with(**{"tenancy.tenants[0].quota.cpu": 8,
                                  "tenancy.tenants[0].defaults.cpuLimit": 1.5})).stack.tenancy.tenants[0]
    assert (tenant.quota.cpu, tenant.defaults.cpu_limit) == ("8", "1.5")


T0 = "gpu-platform:tenancy.tenants[0]"
DECLARED = "(gpu-inference-high, gpu-batch-preemptible)"


@pytest.mark.parametrize(("changes", "expected"), [
    # unknown group, and groups that are not teams
    ({"tenancy.tenants[0].owner": "dataSci"},
     [(f"{T0}.owner", "unknown group 'dataSci'; teams in tenancy.groups: dataScience")]),
    ({"tenancy.tenants[0].owner": "operations"},
     [(f"{T0}.owner", "'operations' is a platform role of the responsibility matrix, which gets its own access; a "
                      "tenant is owned by a team (the matrix's data-science column): dataScience")]),
    ({"tenancy.groups.security": DELETE},
     [("gpu-platform:tenancy.groups", "the responsibility matrix needs a group for security (infrastructure, "
                                      "security, operations are required; the other keys are teams)")]),
    ({"tenancy.groups.dataScience": DELETE},
     [(f"{T0}.owner", "unknown group 'dataScience'; teams in tenancy.groups: none (add one, e.g. dataScience: "
                      "<identity-provider group>)"),
      ("gpu-platform:tenancy.tenants[1].owner", "unknown group 'dataScience'; teams in tenancy.groups: none (add "
                                                "one, e.g. dataScience: <identity-provider group>)")]),
    ({"tenancy.groups.security": "system:masters"},
     [("gpu-platform:tenancy.groups.security", "groups starting with 'system:' belong to Kubernetes itself "
                                               "(system:masters, system:authenticated, ...); name your identity "
                                               "provider's group (got \"system:masters\")")]),
    ({"tenancy.groups.Data_Science": "lab:ds"},
     [("gpu-platform:tenancy.groups.Data_Science", "a group key is a camelCase word such as dataScience (got "
                                                   "\"Data_Science\")")]),
    # negative and malformed quotas
    ({"tenancy.tenants[0].quota.gpu": -1},
     [(f"{T0}.quota.gpu", "a quota must not be negative (0 allows none) (got -1)")]),
    ({"tenancy.tenants[0].quota.pods": -5},
     [(f"{T0}.quota.pods", "a quota must not be negative (0 allows none) (got -5)")]),
    ({"tenancy.tenants[0].quota.cpu": "-2"}, [(f"{T0}.quota.cpu", "must not be negative (got \"-2\")")]),
    ({"tenancy.tenants[0].quota.memory": "-1Gi"}, [(f"{T0}.quota.memory", "must not be negative (got \"-1Gi\")")]),
    ({"tenancy.tenants[0].quota.gpu": "2"}, [(f"{T0}.quota.gpu", "Input should be a valid integer; write the number without "
                                                            "quotes (`pulumi config set --path` stores an integer as "
                                                            "a number, `--type string` makes it text) (got \"2\")")]),
    ({"tenancy.tenants[0].quota.cpu": "8 cores"},
     [(f"{T0}.quota.cpu", "not a CPU quantity: write cores (2, 0.5, 1e3) or millicores (500m) "
                          "(got \"8 cores\")")]),
    ({"tenancy.tenants[0].quota.memory": "32GB"},
     [(f"{T0}.quota.memory", "not a memory quantity: write bytes with a suffix, e.g. 512Mi, 4Gi or 500M "
                             "(got \"32GB\")")]),
    ({"tenancy.tenants[0].defaults.memoryRequest": "512m"},
     [(f"{T0}.defaults.memoryRequest", "'m' is milli: thousandths of a byte; write Mi (mebibytes) or M "
                                       "(megabytes) (got \"512m\")")]),
    # priority classes
    ({"tenancy.tenants[0].allowedPriorityClasses[1]": "gpu-batch"},
     [(f"{T0}.allowedPriorityClasses[1]", f"priority class 'gpu-batch' is not declared in tenancy.priorityClasses "
                                          f"{DECLARED}")]),
    ({"tenancy.tenants[0].allowedPriorityClasses[0]": "system-node-critical"},
     [(f"{T0}.allowedPriorityClasses[0]", "priority class 'system-node-critical' is not declared in "
                                          f"tenancy.priorityClasses {DECLARED}"),
      (f"{T0}.priorityGpuQuota.gpu-inference-high", "priority class 'gpu-inference-high' is not in this tenant's "
                                                    "allowedPriorityClasses, so its pods are refused here anyway; "
                                                    "allow it or drop this quota")]),
    ({"tenancy.tenants[0].priorityGpuQuota": {"gpu-realtime": 1}},
     [(f"{T0}.priorityGpuQuota.gpu-realtime", "priority class 'gpu-realtime' is not declared in "
                                              f"tenancy.priorityClasses {DECLARED}")]),
    ({"tenancy.tenants[0].priorityGpuQuota": {"gpu-inference-high": 3}},
     [(f"{T0}.priorityGpuQuota.gpu-inference-high", "3 GPUs for 'gpu-inference-high' is more than the namespace's "
                                                    "quota.gpu (2), so it would bound nothing; lower it")]),
    ({"tenancy.priorityClasses[1].name": "gpu-inference-high", "tenancy.tenants[0].allowedPriorityClasses": [],
      "tenancy.tenants[0].priorityGpuQuota": {}, "tenancy.tenants[1].allowedPriorityClasses": [],
      "tenancy.tenants[1].priorityGpuQuota": {}},
     [("gpu-platform:tenancy.priorityClasses[1].name", "priority class 'gpu-inference-high' is already "
                                                       "priorityClasses[0]")]),
    ({"tenancy.priorityClasses[0].name": "system-high"},
     [("gpu-platform:tenancy.priorityClasses[0].name", "names starting with 'system-' are reserved for Kubernetes' "
                                                       "own classes (got \"system-high\")")]),
    ({"tenancy.priorityClasses[0].value": 2_000_000_000},
     [("gpu-platform:tenancy.priorityClasses[0].value", "Input should be less than or equal to 1000000000 "
                                                        "(got 2000000000)")]),
    # namespaces
    ({"tenancy.tenants[0].namespace": "gpu-operator"},
     [(f"{T0}.namespace", "'gpu-operator' is the operator namespace (gpuOperator.namespace); its privileged "
                          "operands set no requests, so a tenant's restricted Pod Security and cpu/memory quota "
                          "would block them: give the tenant its own namespace")]),
    ({"tenancy.tenants[0].namespace": "kube-system"},
     [(f"{T0}.namespace", "'kube-system' belongs to Kubernetes itself (default, and kube-* such as kube-system), "
                          "so it already exists with other tenants and policies; give this its own namespace")]),
    ({"tenancy.tenants[1].namespace": "ai-ml"},
     [("gpu-platform:tenancy.tenants[1].namespace", "namespace 'ai-ml' is already tenants[0].namespace")]),
    # container defaults
    ({"tenancy.tenants[0].defaults.cpuRequest": "3"},
     [(f"{T0}.defaults.cpuRequest", "the default cpu request 3 is more than the default limit 2; the API server "
                                    "rejects such a LimitRange")]),
    ({"tenancy.tenants[0].defaults.memoryRequest": "5Gi"},
     [(f"{T0}.defaults.memoryRequest", "the default memory request 5Gi is more than the default limit 4Gi; the API "
                                       "server rejects such a LimitRange")]),
    ({"tenancy.tenants[1].defaults.memoryRequest": "17Gi", "tenancy.tenants[1].defaults.memoryLimit": DELETE},
     [("gpu-platform:tenancy.tenants[1].defaults.memoryRequest", "the default memory request 17Gi is more than the "
                                                                 "namespace's quota.memory 16Gi, so every pod "
                                                                 "relying on it would be rejected")]),
    ({"tenancy.tenants[0].defaults.gpuLimit": 1},
     [(f"{T0}.defaults", "no GPU defaults here: a LimitRange default for nvidia.com/gpu gives a GPU to every "
                         "container that asks for none (sidecars and init containers too), so a single pod could use "
                         "up quota.gpu, and an extended resource's request must equal its limit anyway. Pods ask for "
                         "GPUs explicitly (resources.limits: {nvidia.com/gpu: 1}); quota.gpu bounds them")]),
    ({"tenancy.tenants[0].allowExcec": True},
     [(f"{T0}.allowExcec", "unknown key; did you mean "
                           "'allowExec'? Allowed here: namespace, owner, quota, defaults, allowedPriorityClasses, "
                           "priorityGpuQuota, allowExec")]),
], ids=lambda value: None if isinstance(value, list) else "+".join(value))
def test_tenancy_rules_reject_the_mistake_with_a_clear_message(changes, expected):
    assert problems(lab_with(**changes)) == expected


def test_every_tenancy_problem_is_reported_at_once_with_the_operators():
    raw = lab_with(**{"tenancy.tenants[0].namespace": "gpu-operator", "tenancy.tenants[1].owner": "dataSci",
                      "gpuOperator.driver.version": "525.85.05"})
    assert [path for path, _ in problems(raw)] == [
        "gpu-platform:gpuOperator.driver.version", f"{T0}.namespace", "gpu-platform:tenancy.tenants[1].owner"]


def test_renaming_the_operator_namespace_frees_the_tenant_name_and_catches_the_new_clash():
    raw = lab_with(**{"gpuOperator.namespace": "ai-ml"})
    assert [path for path, _ in problems(raw)] == [f"{T0}.namespace"]
    assert compiled(lab_with(**{"gpuOperator.namespace": "nvidia-gpu-operator"})).stack.tenancy is not None


@pytest.mark.parametrize(("text", "cores"), [("2", "2"), ("0.5", "0.5"), ("500m", "0.5"), (".25", "0.25"),
                                             ("7500m", "7.5")])
def test_cpu_quantities_compare_in_cores(text, cores):
    assert cpu_cores(text) == Decimal(cores)


@pytest.mark.parametrize(("text", "size"), [("512Mi", 512 * 2**20), ("4Gi", 4 * 2**30), ("500M", 500 * 10**6),
                                            ("1.5Gi", 3 * 2**29), ("1024", 1024), ("2k", 2000)])
def test_memory_quantities_compare_in_bytes(text, size):
    assert memory_bytes(text) == size


@pytest.mark.parametrize(("profile", "expected"), [
    (None, ("nvidia.com/gpu",)),
    ({"mps": {"replicas": 4, "renameByDefault": False}}, ("nvidia.com/gpu",)),
    ({"mps": {"replicas": 4, "renameByDefault": True}}, ("nvidia.com/gpu", "nvidia.com/gpu.shared")),
    ({"timeSlicing": {"replicas": 4, "renameByDefault": True}}, ("nvidia.com/gpu", "nvidia.com/gpu.shared")),
    ({}, ("nvidia.com/gpu",)),
])
def test_the_quota_bounds_the_name_the_device_plugin_advertises(profile, expected):
    sharing = None if profile is None else SharingConfig.model_validate({"default": "p", "profiles": {"p": profile}})
    assert gpu_resources(sharing) == expected


# --- the component under mocks -------------------------------------------------------------------------------------

@pytest.fixture
def recorder() -> Recorder:
    recorder = Recorder("gpu-platform", "test")
    recorder.start_stack()
    return recorder


def children(tenancy: Tenancy) -> list[pulumi.CustomResource]:
    out: list[pulumi.CustomResource] = [
        *tenancy.priority_classes, tenancy.observer_role, tenancy.observer_binding, tenancy.auditor_role,
        tenancy.auditor_binding, tenancy.operator_admins, tenancy.operator_viewers]
    for tenant in tenancy.tenants.values():
        out += [tenant.namespace, tenant.quota, *tenant.priority_quotas, tenant.priority_gate, tenant.limit_range,
                tenant.role, tenant.role_binding]
    return out


def when_declared(tenancy: Tenancy, check: Any) -> pulumi.Output[Any]:
    return pulumi.Output.all(*(r.urn for r in children(tenancy))).apply(check)


def lab_tenancy(raw: dict[str, Any] | None = None, **kwargs: Any) -> Tenancy:
    config = compiled(raw).stack.tenancy
    assert config is not None
    return Tenancy("tenancy", config, kubernetes_version=KUBERNETES_VERSION, operator_namespace="gpu-operator",
                   **kwargs)


def find(recorder: Recorder, type_token: str, name: str, namespace: str | None = None) -> dict[str, Any]:
    [found] = [r.inputs for r in recorder.by_type(type_token)
               if r.inputs["metadata"]["name"] == name and r.inputs["metadata"].get("namespace") == namespace]
    return found


def rules(inputs: dict[str, Any]) -> list[tuple[list[str], list[str], list[str]]]:
    return [(r["apiGroups"], r["resources"], r["verbs"]) for r in inputs["rules"]]


@pulumi.runtime.test
def test_tenant_namespaces_are_restricted_pinned_labelled_and_protected(recorder):
    tenancy = lab_tenancy()

    def check(urns: list[str]) -> None:
        for namespace in ("ai-ml", "sdr"):
            [registration] = [r for r in recorder.by_type(NAMESPACE) if r.inputs["metadata"]["name"] == namespace]
            labels = registration.inputs["metadata"]["labels"]
            for mode in ("enforce", "audit", "warn"):
                assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted", urns
                assert labels[f"pod-security.kubernetes.io/{mode}-version"] == "v1.34"
            assert labels["app.kubernetes.io/part-of"] == "gpu-platform"
            assert labels["app.kubernetes.io/managed-by"] == "pulumi"
            assert labels["gpu-platform/owner"] == "dataScience"
            assert registration.protect is True

    return when_declared(tenancy, check)


@pulumi.runtime.test
def test_the_namespace_quota_bounds_gpu_cpu_memory_and_pods_unscoped(recorder):
    tenancy = lab_tenancy()

    def check(urns: list[str]) -> None:
        ai_ml = find(recorder, QUOTA, "tenant-quota", "ai-ml")
        assert ai_ml["spec"] == {"hard": {"requests.nvidia.com/gpu": "2", "requests.cpu": "8",
                                          "requests.memory": "32Gi", "pods": "20"}}, urns
        sdr = find(recorder, QUOTA, "tenant-quota", "sdr")
        assert sdr["spec"] == {"hard": {"requests.nvidia.com/gpu": "2", "requests.cpu": "4",
                                        "requests.memory": "16Gi", "pods": "10"}}
        # extended resources take only the requests. prefix
        assert not any(key in ("nvidia.com/gpu", "limits.nvidia.com/gpu")
                       for r in recorder.by_type(QUOTA) for key in r.inputs["spec"]["hard"])

    return when_declared(tenancy, check)


@pulumi.runtime.test
def test_a_priority_scoped_quota_bounds_high_priority_gpu_use_separately(recorder):
    tenancy = lab_tenancy()

    def check(urns: list[str]) -> None:
        for namespace in ("ai-ml", "sdr"):
            quota = find(recorder, QUOTA, "priority-gpu-inference-high", namespace)
            assert quota["spec"] == {"hard": {"requests.nvidia.com/gpu": "1"}, "scopeSelector": {"matchExpressions": [
                {"scopeName": "PriorityClass", "operator": "In", "values": ["gpu-inference-high"]}]}}, urns

    return when_declared(tenancy, check)


@pytest.mark.parametrize(("allowed", "refused"), [
    (["gpu-inference-high", "gpu-batch-preemptible"], SYSTEM_CLASSES),
    (["gpu-batch-preemptible"], [*SYSTEM_CLASSES, "gpu-inference-high"]),
    ([], [*SYSTEM_CLASSES, "gpu-inference-high", "gpu-batch-preemptible"]),
])
def test_priority_classes_a_namespace_may_not_use_are_gated_by_a_zero_pod_quota(allowed, refused):
    @pulumi.runtime.test
    def run(recorder: Recorder) -> pulumi.Output[Any]:
        raw = lab_with(**{"tenancy.tenants[1].allowedPriorityClasses": allowed,
                          "tenancy.tenants[1].priorityGpuQuota": {}})
        tenancy = lab_tenancy(raw)

        def check(urns: list[str]) -> None:
            gate = find(recorder, QUOTA, "disallowed-priority-classes", "sdr")
            assert gate["spec"] == {"hard": {"pods": "0"}, "scopeSelector": {"matchExpressions": [
                {"scopeName": "PriorityClass", "operator": "In", "values": refused}]}}, urns
            assert not [r for r in recorder.by_type(QUOTA) if r.inputs["metadata"]["namespace"] == "sdr"
                        and r.inputs["metadata"]["name"].startswith("priority-")]

        return when_declared(tenancy, check)

    recorder = Recorder("gpu-platform", "test")
    recorder.start_stack()
    run(recorder)


@pulumi.runtime.test
def test_container_defaults_admit_pods_without_requests_and_never_default_a_gpu(recorder):
    tenancy = lab_tenancy(lab_with(**{"tenancy.tenants[1].defaults.cpuLimit": DELETE}))

    def check(urns: list[str]) -> None:
        assert find(recorder, LIMIT_RANGE, "container-defaults", "ai-ml")["spec"] == {"limits": [{
            "type": "Container", "defaultRequest": {"cpu": "250m", "memory": "512Mi"},
            "default": {"cpu": "2", "memory": "4Gi"}}]}, urns
        # no cpu limit configured: none is defaulted (cpu stays unthrottled)
        assert find(recorder, LIMIT_RANGE, "container-defaults", "sdr")["spec"]["limits"][0]["default"] == {
            "memory": "2Gi"}
        assert "nvidia.com/gpu" not in json.dumps([r.inputs for r in recorder.by_type(LIMIT_RANGE)])

    return when_declared(tenancy, check)


@pulumi.runtime.test
def test_priority_classes_are_declared_as_configured_and_never_the_global_default(recorder):
    tenancy = lab_tenancy()

    def check(urns: list[str]) -> None:
        classes = {r.inputs["metadata"]["name"]: r.inputs for r in recorder.by_type(PRIORITY_CLASS)}
        assert set(classes) == {"gpu-inference-high", "gpu-batch-preemptible"}, urns
        assert (classes["gpu-inference-high"]["value"], classes["gpu-inference-high"]["preemptionPolicy"]) == (
            100000, "PreemptLowerPriority")
        assert (classes["gpu-batch-preemptible"]["value"], classes["gpu-batch-preemptible"]["preemptionPolicy"]) == (
            1000, "Never")
        assert all(c["globalDefault"] is False for c in classes.values())
        assert all(c["description"] for c in classes.values())

    return when_declared(tenancy, check)


TENANT_RULES = [
    ([""], ["pods", "services", "configmaps", "secrets", "persistentvolumeclaims"], WRITE),
    ([""], ["pods/log"], ["get"]),
    ([""], ["events", "resourcequotas", "limitranges"], READ),
    (["apps"], ["deployments", "statefulsets"], WRITE),
    (["apps"], ["deployments/scale", "statefulsets/scale"], ["get", "update", "patch"]),
    (["apps"], ["replicasets"], READ),
    (["batch"], ["jobs", "cronjobs"], WRITE),
]
EXEC_RULE = ([""], ["pods/exec", "pods/attach"], ["get", "create"])


@pytest.mark.parametrize("allow_exec", [False, True])
def test_the_team_role_lists_its_verbs_and_grants_exec_only_when_configured(allow_exec):
    @pulumi.runtime.test
    def run(recorder: Recorder) -> pulumi.Output[Any]:
        tenancy = lab_tenancy(lab_with(**{"tenancy.tenants[0].allowExec": allow_exec}))

        def check(urns: list[str]) -> None:
            role = find(recorder, ROLE, "tenant-developer", "ai-ml")
            assert rules(role) == [*TENANT_RULES, EXEC_RULE] if allow_exec else TENANT_RULES, urns
            assert rules(find(recorder, ROLE, "tenant-developer", "sdr")) == TENANT_RULES
            binding = find(recorder, ROLE_BINDING, "tenant-developer", "ai-ml")
            assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                          "name": "tenant-developer"}
            assert binding["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                                            "name": "lab:data-science"}]

        return when_declared(tenancy, check)

    recorder = Recorder("gpu-platform", "test")
    recorder.start_stack()
    run(recorder)


@pulumi.runtime.test
def test_operations_and_infrastructure_observe_nodes_gpu_resources_and_pods_cluster_wide(recorder):
    tenancy = lab_tenancy()

    def check(urns: list[str]) -> None:
        assert rules(find(recorder, CLUSTER_ROLE, "gpu-platform-observer")) == [
            ([""], ["nodes", "pods", "namespaces", "resourcequotas", "limitranges"], READ),
            (["nvidia.com"], ["clusterpolicies", "clusterpolicies/status", "nvidiadrivers", "nvidiadrivers/status"],
             READ),
            (["scheduling.k8s.io"], ["priorityclasses"], READ),
            (["metrics.k8s.io"], ["nodes", "pods"], ["get", "list"]),
        ], urns
        binding = find(recorder, CLUSTER_ROLE_BINDING, "gpu-platform-observer")
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                      "name": "gpu-platform-observer"}
        assert [s["name"] for s in binding["subjects"]] == ["lab:operations", "lab:infrastructure"]

    return when_declared(tenancy, check)


@pulumi.runtime.test
def test_security_reads_rbac_objects_and_namespaces_cluster_wide(recorder):
    tenancy = lab_tenancy()

    def check(urns: list[str]) -> None:
        assert rules(find(recorder, CLUSTER_ROLE, "gpu-platform-rbac-auditor")) == [
            (["rbac.authorization.k8s.io"], ["roles", "rolebindings", "clusterroles", "clusterrolebindings"], READ),
            ([""], ["namespaces", "serviceaccounts"], READ),
        ], urns
        binding = find(recorder, CLUSTER_ROLE_BINDING, "gpu-platform-rbac-auditor")
        assert binding["roleRef"]["name"] == "gpu-platform-rbac-auditor"
        assert [s["name"] for s in binding["subjects"]] == ["lab:security"]

    return when_declared(tenancy, check)


@pulumi.runtime.test
def test_infrastructure_administers_the_operator_namespace_only(recorder):
    tenancy = lab_tenancy()

    def check(urns: list[str]) -> None:
        admins = find(recorder, ROLE_BINDING, "gpu-platform-operator-admins", "gpu-operator")
        assert admins["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                     "name": "admin"}, urns
        assert [s["name"] for s in admins["subjects"]] == ["lab:infrastructure"]
        viewers = find(recorder, ROLE_BINDING, "gpu-platform-operator-viewers", "gpu-operator")
        assert viewers["roleRef"]["name"] == "view"
        assert [s["name"] for s in viewers["subjects"]] == ["lab:operations", "lab:security"]
        bindings = recorder.by_type(ROLE_BINDING) + recorder.by_type(CLUSTER_ROLE_BINDING)
        admin_refs = [b.inputs["metadata"] for b in bindings
                      if b.inputs["roleRef"]["name"] in ("admin", "cluster-admin", "edit")]
        assert admin_refs == [admins["metadata"]]  # nowhere else, and never cluster-admin

    return when_declared(tenancy, check)


@pulumi.runtime.test
def test_no_role_we_write_uses_a_wildcard_and_tenants_cannot_touch_their_quota_or_rbac(recorder):
    tenancy = lab_tenancy(lab_with(**{"tenancy.tenants[0].allowExec": True}))

    def check(urns: list[str]) -> None:
        roles = recorder.by_type(ROLE) + recorder.by_type(CLUSTER_ROLE)
        assert len(roles) == 4, urns
        for role in roles:
            for rule in role.inputs["rules"]:
                for field in ("apiGroups", "resources", "verbs"):
                    assert rule[field] and not any("*" in item for item in rule[field]), (role.name, rule)
        for role in recorder.by_type(ROLE):
            for rule in role.inputs["rules"]:
                if {"resourcequotas", "limitranges"} & set(rule["resources"]):
                    assert rule["verbs"] == READ
                assert "rbac.authorization.k8s.io" not in rule["apiGroups"]
                assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"])

    return when_declared(tenancy, check)


@pulumi.runtime.test
def test_with_renamed_shared_gpus_every_gpu_quota_bounds_both_names(recorder):
    tenancy = lab_tenancy(gpu_resources=("nvidia.com/gpu", "nvidia.com/gpu.shared"))

    def check(urns: list[str]) -> None:
        hard = find(recorder, QUOTA, "tenant-quota", "ai-ml")["spec"]["hard"]
        assert (hard["requests.nvidia.com/gpu"], hard["requests.nvidia.com/gpu.shared"]) == ("2", "2"), urns
        assert find(recorder, QUOTA, "priority-gpu-inference-high", "ai-ml")["spec"]["hard"] == {
            "requests.nvidia.com/gpu": "1", "requests.nvidia.com/gpu.shared": "1"}

    return when_declared(tenancy, check)


@pulumi.runtime.test
def test_every_child_has_its_component_as_parent_and_namespaced_objects_wait_for_their_namespace(recorder):
    tenancy = lab_tenancy()

    def check(urns: list[str]) -> None:
        [root] = recorder.by_type("gpu-platform:tenancy:Tenancy")
        tenants = {r.name: r for r in recorder.by_type("gpu-platform:tenancy:TenantNamespace")}
        assert set(tenants) == {"tenancy-ai-ml", "tenancy-sdr"}, urns
        assert {t.parent for t in tenants.values()} == {root.urn}
        namespaces = {r.inputs["metadata"]["name"]: r for r in recorder.by_type(NAMESPACE)}
        for registration in recorder.resources:
            if not registration.custom:
                continue
            namespace = registration.inputs["metadata"].get("namespace")
            if namespace in ("ai-ml", "sdr"):
                assert registration.parent == tenants[f"tenancy-{namespace}"].urn, registration.name
                assert namespaces[namespace].urn in registration.dependencies, registration.name
            elif registration.type == NAMESPACE:
                assert registration.parent == tenants[f"tenancy-{registration.inputs['metadata']['name']}"].urn
            else:
                assert registration.parent == root.urn, registration.name
        role_binding = next(r for r in recorder.by_type(ROLE_BINDING) if r.name == "tenancy-ai-ml-developers")
        role = next(r for r in recorder.by_type(ROLE) if r.name == "tenancy-ai-ml-developer")
        assert role.urn in role_binding.dependencies  # the binding names the Role it waits for

    return when_declared(tenancy, check)


@pulumi.runtime.test
def test_the_platform_adds_tenancy_beside_the_operator_and_binds_in_its_namespace(recorder):
    platform = GpuPlatform("gpu-platform", compiled())

    def check(urns: list[str]) -> None:
        [root] = recorder.by_type("gpu-platform:tenancy:Tenancy")
        [platform_registration] = recorder.by_type("gpu-platform:index:GpuPlatform")
        assert root.parent == platform_registration.urn and root.name == "gpu-platform-tenancy", urns
        operator_ns = next(r for r in recorder.by_type(NAMESPACE) if r.name == "gpu-platform-namespace")
        for binding in recorder.by_type(ROLE_BINDING):
            if binding.inputs["metadata"]["namespace"] == "gpu-operator":
                assert operator_ns.urn in binding.dependencies, binding.name
        operator_quotas = [r for r in recorder.by_type(QUOTA) + recorder.by_type(LIMIT_RANGE)
                           if r.inputs["metadata"]["namespace"] == "gpu-operator"]
        assert operator_quotas == []  # its operands set no requests: a cpu/memory quota would block them

    return when_declared(platform.tenancy, check)


# --- the lab run: inventory, schemas, nothing declared on a bad config, the policy pack ----------------------------

@pytest.fixture(scope="module")
def lab() -> ProgramRun:
    return run_program(ROOT, read_stack_file(ROOT, "lab"))


def tenancy_resources(run: ProgramRun) -> list[Registration]:
    parents = {r.urn for r in run.resources if r.type in TENANCY_TYPES}
    return [r for r in run.resources if r.custom and r.parent in parents]


def test_the_lab_declares_exactly_the_tenancy_inventory(lab):
    inventory = sorted((r.type.rpartition(":")[2], r.inputs["metadata"].get("namespace", ""),
                        r.inputs["metadata"]["name"], r.name) for r in tenancy_resources(lab))
    expected = [
        ("ClusterRole", "", "gpu-platform-observer", "gpu-platform-tenancy-observer"),
        ("ClusterRole", "", "gpu-platform-rbac-auditor", "gpu-platform-tenancy-rbac-auditor"),
        ("ClusterRoleBinding", "", "gpu-platform-observer", "gpu-platform-tenancy-observers"),
        ("ClusterRoleBinding", "", "gpu-platform-rbac-auditor", "gpu-platform-tenancy-rbac-auditors"),
        ("PriorityClass", "", "gpu-batch-preemptible", "gpu-platform-tenancy-gpu-batch-preemptible"),
        ("PriorityClass", "", "gpu-inference-high", "gpu-platform-tenancy-gpu-inference-high"),
        ("RoleBinding", "gpu-operator", "gpu-platform-operator-admins", "gpu-platform-tenancy-operator-admins"),
        ("RoleBinding", "gpu-operator", "gpu-platform-operator-viewers", "gpu-platform-tenancy-operator-viewers"),
    ]
    for ns in ("ai-ml", "sdr"):
        prefix = f"gpu-platform-tenancy-{ns}"
        expected += [
            ("LimitRange", ns, "container-defaults", f"{prefix}-defaults"),
            ("Namespace", "", ns, prefix),
            ("ResourceQuota", ns, "disallowed-priority-classes", f"{prefix}-priority-gate"),
            ("ResourceQuota", ns, "priority-gpu-inference-high", f"{prefix}-quota-gpu-inference-high"),
            ("ResourceQuota", ns, "tenant-quota", f"{prefix}-quota"),
            ("Role", ns, "tenant-developer", f"{prefix}-developer"),
            ("RoleBinding", ns, "tenant-developer", f"{prefix}-developers"),
        ]
    assert inventory == sorted(expected)


def test_every_lab_tenancy_manifest_validates_against_the_kubernetes_schema(lab):
    manifests = [r.inputs for r in tenancy_resources(lab)]
    assert len(manifests) == 22
    found = {(m["kind"], m["metadata"].get("namespace"), m["metadata"]["name"]):
             [str(f) for f in validate(m, kubernetes_version=KUBERNETES_VERSION)] for m in manifests}
    assert {key: findings for key, findings in found.items() if findings} == {}


def test_the_schema_check_would_catch_a_misspelt_quota_field(lab):
    [quota] = [r.inputs for r in tenancy_resources(lab) if r.name == "gpu-platform-tenancy-ai-ml-quota"]
    broken = {**quota, "spec": {"hardd": quota["spec"]["hard"]}}
    assert [f.path for f in validate(broken, kubernetes_version=KUBERNETES_VERSION)] == ["spec"]


def test_a_tenancy_error_stops_the_program_with_nothing_registered(recorders):
    raw = mutate(lab_raw(), "tenancy.tenants[0].owner", "dataSci")
    with pytest.raises(pulumi.RunError) as caught:
        run_program(ROOT, stack_file(raw))
    assert str(caught.value) == ("invalid stack config (1 problem); nothing was declared:\n  - "
                                 f"{T0}.owner: unknown group 'dataSci'; teams in tenancy.groups: dataScience\n"
                                 "not checked yet, because they read a part with a problem above (fix it and run "
                                 "again):\n  - the chart values against the pinned chart release (after the rules "
                                 "between sections pass)")
    assert [r.resources for r in recorders] == [[]]


# --- the policy pack over the lab's tenancy objects ----------------------------------------------------------------

def pack_policies() -> list[Any]:
    """Every policy of the pack (each gpu_policies module's POLICY), never policies/__main__.py."""
    import gpu_policies

    modules = [importlib.import_module(f"gpu_policies.{m.name}") for m in pkgutil.iter_modules(gpu_policies.__path__)]
    return [m.POLICY for m in modules if hasattr(m, "POLICY")]


def pack_verdict(resources: list[tuple[str, str, dict[str, Any]]]) -> dict[str, list[str]]:
    """Run every policy's validator on `resources` ((type, name, props)) with the lab's pack config; the
    messages each mandatory policy reports."""
    from pulumi_policy import (
        EnforcementLevel, PolicyCustomTimeouts, PolicyResource, PolicyResourceOptions, ResourceValidationArgs,
        ResourceValidationPolicy, StackValidationArgs,
    )
    from pulumi_policy.policy import _NotApplicableError
    from pulumi_policy.proxy import UnknownValueError

    from gpu_policies.config import reset_reported_config_errors

    pack_config = json.loads((ROOT / "policies" / "config" / "lab.json").read_text())
    options = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)
    urn = "urn:pulumi:lab::gpu-platform::{}::{}".format
    reset_reported_config_errors()
    verdict: dict[str, list[str]] = {}
    for policy in pack_policies():
        if policy.enforcement_level not in (None, EnforcementLevel.MANDATORY):
            continue
        config = pack_config.get(policy.name, {})
        messages = verdict.setdefault(policy.name, [])

        def report(message: str, _urn: str | None = None, messages: list[str] = messages) -> None:
            messages.append(message)

        calls: list[Any] = (
            [ResourceValidationArgs(t, p, urn(t, n), n, options, None, config) for t, n, p in resources]
            if isinstance(policy, ResourceValidationPolicy) else
            [StackValidationArgs([PolicyResource(t, p, urn(t, n), n, options, None, None, [], {})
                                  for t, n, p in resources], config)])
        for args in calls:
            try:
                policy.validate(args, report)
            except _NotApplicableError:
                pass
            except UnknownValueError as error:  # every value of ours is known at preview
                messages.append(f"unknown: {error}")
    return verdict


def gpu_workload(namespace: str) -> tuple[str, str, dict[str, Any]]:
    """A restricted tenant Deployment that asks for one GPU, as a team would deploy it."""
    container = {"name": "infer", "image": "registry.example/infer:1.0.0",
                 "resources": {"limits": {"nvidia.com/gpu": 1}},
                 "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                                     "runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}}
    return ("kubernetes:apps/v1:Deployment", f"infer-{namespace}", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "infer", "namespace": namespace},
        "spec": {"selector": {"matchLabels": {"app": "infer"}}, "template": {
            "metadata": {"labels": {"app": "infer"}},
            "spec": {"priorityClassName": "gpu-inference-high", "containers": [container]}}}})


def test_the_policy_pack_finds_nothing_mandatory_in_the_lab_tenancy(lab):
    resources = [(r.type, r.name, r.inputs) for r in tenancy_resources(lab)]
    # GPU workloads in both tenant namespaces: the pack's quota rule must find our unscoped GPU quota
    verdict = pack_verdict([*resources, gpu_workload("ai-ml"), gpu_workload("sdr")])
    assert {"rbac-no-wildcards", "rbac-no-admin-bindings", "gpu-quota-required", "pod-security-standards",
            "container-images-pinned"} <= set(verdict)
    assert {name: messages for name, messages in verdict.items() if messages} == {}


def test_the_pack_check_would_catch_a_gpu_workload_outside_the_tenant_namespaces(lab):
    resources = [(r.type, r.name, r.inputs) for r in tenancy_resources(lab)]
    verdict = pack_verdict([*resources, gpu_workload("scratch")])
    [message] = verdict["gpu-quota-required"]
    assert message.startswith("Deployment scratch/infer, ")

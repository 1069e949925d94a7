"""The real tier: the real Pulumi CLI, provider and Helm against a local API server (tools/cluster.py).

Fixtures, from the widest:
- `toolchain_bin` (session): the toolchain's bin folder, built first if the cache has none (never skipped).
- `cluster` (session): one local cluster shaped like the lab's, stopped and removed at the end.
- `kube` (session): an admin client of it.
- `engine` (session): the real CLI with a private Pulumi home and file backend.
- `lab` (function): a Stack, a fresh project folder with a stack made from Pulumi.lab.yaml; whatever a test
  deployed is destroyed when it ends, and the test fails if that leaves anything behind.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.real.harness import restore, snapshot, stack_name, tear_down
from tools.stacks import Stack
from tools import toolchain
from tools.cluster import ClusterError, LocalCluster
from tools.engine import Engine
from tools.kube import Kube
from tools.upstream import upstream_dir


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(item.fspath).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.real)


@pytest.fixture(scope="session")
def toolchain_bin() -> Path:
    try:
        return toolchain.ensure()
    except toolchain.ToolchainError as error:
        pytest.fail(f"the real tier needs its toolchain and it could not be built: {error}")


@pytest.fixture(scope="session")
def cluster(toolchain_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    local = LocalCluster(tmp_path_factory.mktemp("cluster"), toolchain_bin, upstream=upstream_dir())
    try:
        local.start()
    except ClusterError as error:
        pytest.fail(f"the local cluster did not start: {error}")
    yield local
    local.stop()


@pytest.fixture(scope="session")
def kube(cluster: LocalCluster) -> Kube:
    return cluster.kube()


@pytest.fixture(scope="session")
def baseline(kube: Kube) -> dict:
    """The cluster as it starts: what every test must leave it as."""
    return snapshot(kube)


@pytest.fixture(scope="session")
def engine(toolchain_bin: Path, cluster: LocalCluster, baseline: dict,
           tmp_path_factory: pytest.TempPathFactory) -> Engine:
    """(`baseline` first: the cluster is recorded before any stack touches it.)"""
    engine = Engine(toolchain_bin, tmp_path_factory.mktemp("pulumi"), kubeconfig=cluster.kubeconfig)
    engine.prepare()
    return engine


@pytest.fixture
def lab(engine: Engine, kube: Kube, baseline: dict, tmp_path: Path,
        request: pytest.FixtureRequest) -> Iterator[Stack]:
    stack = Stack(engine, tmp_path / "project", stack_name(request))
    stack.init()
    yield stack
    tear_down(stack)
    restore(kube, baseline)

"""Interrupted and failed runs: `pulumi up` stopped in the middle of the Helm release, then the runbook's recovery.

Given the lab stack deployed and an upgrade whose operator rollout cannot finish yet, when `pulumi up` is
interrupted while Helm waits (Ctrl-C, or every process killed as when a CI runner or the machine dies), then the
stack and the release are left as the assertions say; and the steps of docs/runbook.md "An interrupted or
failed pulumi up" (run here exactly as written there) bring both back to the config, with Helm's release
deployed and nothing left for a preview to do.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

from tests.real.harness import EXTRA_TOLERATION, helm_release, operator_cannot_roll, wait_for
from tools.cluster import LocalCluster
from tools.engine import Result
from tools.kube import Kube
from tools.stacks import Stack


def descendants(pid: int) -> list[int]:
    """Every process started under `pid` (the CLI starts its plugins in process groups of their own)."""
    found, pending = [], [pid]
    while pending:
        parent = pending.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            found += children
            pending += children
    return found


def interrupt_while_helm_waits(kube: Kube, sig: signal.Signals) -> Callable[[subprocess.Popen[str]], None]:
    """`on_start` for Engine.run: once the release is pending-upgrade, signal the CLI as a person or a crash would.

    SIGINT goes to the CLI's process group, as a terminal's Ctrl-C does. SIGKILL goes to the CLI and every
    process under it (provider, pack), as when the machine or the CI runner dies."""
    def start(cli: subprocess.Popen[str]) -> None:
        def watch() -> None:
            wait_for("Helm's upgrade to begin", lambda: helm_release(kube)["labels"]["status"] == "pending-upgrade",
                     timeout=120)
            if sig == signal.SIGKILL:
                for pid in [cli.pid, *descendants(cli.pid)]:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            else:
                os.killpg(cli.pid, sig)
        threading.Thread(target=watch, daemon=True).start()
    return start


def recover(lab: Stack, cluster: LocalCluster, helm: Path, release: str = "gpu-operator",
            namespace: str = "gpu-operator") -> None:
    """docs/runbook.md, "An interrupted or failed pulumi up", step by step."""
    # 1. A stack lock left behind: `pulumi cancel` removes it (a file backend keeps it as a lock file).
    assert lab.pulumi("cancel", "--yes").returncode == 0
    # 2. Pending operations: export, drop pending creates (their objects may exist unrecorded), import.
    state = json.loads(lab.pulumi("stack", "export").stdout)
    pending = state["deployment"].get("pending_operations") or []
    state["deployment"]["pending_operations"] = [op for op in pending if op["type"] != "creating"]
    state_file = lab.folder / "stack.json"
    state_file.write_text(json.dumps(state))
    assert lab.pulumi("stack", "import", "--file", str(state_file)).returncode == 0
    # 3. A release left pending-install/-upgrade/-rollback: back its record up and delete it, so that Helm's
    #    last deployed revision is the current one again (no object is touched).
    history = json.loads(subprocess.run(
        [str(helm), f"--kubeconfig={cluster.kubeconfig}", "history", release, "-n", namespace, "-o", "json"],
        capture_output=True, text=True, check=True).stdout)
    if history[-1]["status"].startswith("pending-"):
        record = f"sh.helm.release.v1.{release}.v{history[-1]['revision']}"
        backup = cluster.kubectl("get", "secret", record, "-n", namespace, "-o", "yaml")
        (lab.folder / f"{record}.yaml").write_text(backup.stdout)
        cluster.kubectl("delete", "secret", record, "-n", namespace)
    # 4. `pulumi up`, without a refresh: the stack still holds the last applied values, so the upgrade runs again.
    result = lab.up()
    assert result.returncode == 0, result.output


def force_upgrade(lab: Stack) -> None:
    """The runbook's way back when the stack already believes the upgrade happened (after a refresh or a
    `helm rollback`): one upgrade with Helm's --force applies the config again."""
    assert lab.set("gpuOperator.chart.forceUpdate", True).up().returncode == 0
    assert lab.set("gpuOperator.chart.forceUpdate", False).up().returncode == 0


def extra_toleration_deployed(kube: Kube) -> bool:
    release = helm_release(kube)
    tolerations = release["record"]["config"].get("operator", {}).get("tolerations", [])
    return release["labels"]["status"] == "deployed" and EXTRA_TOLERATION[0] in tolerations


def deployed_then_interrupted(lab: Stack, kube: Kube, sig: signal.Signals) -> Result:
    """The lab deployed, then an upgrade that rolls the operator, interrupted with `sig` while Helm waits for it."""
    lab.set("gpuOperator.chart.timeoutSeconds", 300)
    assert lab.up().returncode == 0
    lab.set("gpuOperator.operator.tolerations", EXTRA_TOLERATION)
    with operator_cannot_roll(kube):
        return lab.up(on_start=interrupt_while_helm_waits(kube, sig))


def test_ctrl_c_while_helm_waits_leaves_a_failed_release_that_a_refresh_or_a_rollback_would_hide(
        lab: Stack, kube: Kube, cluster: LocalCluster, toolchain_bin: Path) -> None:
    interrupted = deployed_then_interrupted(lab, kube, signal.SIGINT)
    assert interrupted.returncode != 0
    assert "^C received; cancelling" in interrupted.output and "context canceled" in interrupted.output
    assert helm_release(kube)["labels"]["status"] == "failed"
    # Pitfall 1: a refresh reads the failed revision's values into the state, so the next up has nothing to do
    # and Helm's release stays failed (a plain up, without the refresh, would retry the upgrade).
    assert lab.pulumi("refresh", "--yes", "--non-interactive", "--skip-preview").returncode == 0
    again = lab.up()
    assert again.returncode == 0 and "1 updated" not in again.output
    assert helm_release(kube)["labels"]["status"] == "failed"
    # Pitfall 2: Helm's rollback makes the release deployed, with the old values, and the stack does not notice.
    subprocess.run([str(toolchain_bin / "helm"), f"--kubeconfig={cluster.kubeconfig}", "rollback", "gpu-operator",
                    "1", "-n", "gpu-operator", "--wait"], capture_output=True, check=True)
    assert lab.up("--refresh").returncode == 0
    release = helm_release(kube)
    assert release["labels"]["status"] == "deployed" and not extra_toleration_deployed(kube)
    assert lab.preview("--refresh", "--expect-no-changes").returncode == 0  # the drift is invisible
    force_upgrade(lab)
    assert extra_toleration_deployed(kube)
    assert lab.preview("--expect-no-changes").returncode == 0


def test_a_killed_run_leaves_a_locked_stack_and_a_pending_release_that_the_runbook_recovers(
        lab: Stack, kube: Kube, cluster: LocalCluster, toolchain_bin: Path) -> None:
    killed = deployed_then_interrupted(lab, kube, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    assert helm_release(kube)["labels"]["status"] == "pending-upgrade"
    state = json.loads(lab.pulumi("stack", "export").stdout)
    assert [op["type"] for op in state["deployment"]["pending_operations"]] == ["updating"]
    locked = lab.up()
    assert locked.returncode != 0
    assert "the stack is currently locked by 1 lock(s)" in locked.output and "pulumi cancel" in locked.output
    assert lab.pulumi("cancel", "--yes").returncode == 0
    pending = lab.up()
    assert pending.returncode != 0
    assert "another operation (install/upgrade/rollback) is in progress" in pending.output, pending.output
    recover(lab, cluster, toolchain_bin / "helm")
    assert extra_toleration_deployed(kube)
    assert lab.preview("--expect-no-changes").returncode == 0

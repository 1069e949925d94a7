"""Serve the project's `__main__.py` to the real Pulumi CLI through the SDK's own language server.

    python -m tools.program_host [PROJECT_DIR]     prints `127.0.0.1:<port>`, then serves until stopped

The CLI runs a Python program through a separate plugin, `pulumi-language-python`, which the Go module
proxy does not serve (docs/real-tier.md). The CLI has a second, supported way in, which the Automation API
uses for inline programs: `pulumi <command> --client=<address>` runs the program through a LanguageRuntime
server that is already listening. The Pulumi Python SDK ships that server (`pulumi.automation._server`);
this module hands it the project's own `__main__.py`, executed exactly as the language host's executor
runs it (`runpy` with `__name__ == "__main__"`, the project folder first on `sys.path` and as the working
directory). Everything after that is the real engine, provider and policy pack.
"""
from __future__ import annotations

import os
import runpy
import sys
import threading
from concurrent import futures
from pathlib import Path


def serve(project: Path) -> None:
    import asyncio

    import grpc
    import pulumi
    from pulumi.automation import _server
    from pulumi.automation._server import LanguageServer
    from pulumi.runtime._grpc_settings import _GRPC_CHANNEL_OPTIONS
    from pulumi.runtime.proto import language_pb2, language_pb2_grpc

    project = project.resolve()
    os.chdir(project)
    sys.path.insert(0, str(project))
    failed: list[bool] = []
    run_in_stack = _server.run_in_stack

    async def recording_run_in_stack(func):  # noqa: ANN001, ANN202 - the SDK's own signature
        """The SDK's run_in_stack, noting a RunError (from the program or from one of its applies)."""
        failed.clear()
        try:
            return await run_in_stack(func)
        except pulumi.RunError:
            failed.append(True)
            raise

    _server.run_in_stack = recording_run_in_stack

    def program() -> None:
        runpy.run_path(str(project / "__main__.py"), run_name="__main__")

    class Host(LanguageServer):
        """The SDK's server, answering a `pulumi.RunError` as the language host does: the error is already
        logged, so the run bails (the CLI prints it once, not again as "an unhandled error occurred"). A RunError
        raised in an apply can also escape the SDK's clean-up of the other pending tasks (re-raised by a task that
        failed with it, or a future that cannot be cancelled any more); the same answer."""

        def Run(self, request, context):  # noqa: N802 - the gRPC method's name
            try:
                response = super().Run(request, context)
            except (asyncio.InvalidStateError, pulumi.RunError):
                if not failed:
                    raise
                return language_pb2.RunResponse(bail=True)
            return language_pb2.RunResponse(bail=True) if failed else response

    # The same server options as the Automation API's inline programs (pulumi.automation._stack).
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=_GRPC_CHANNEL_OPTIONS)
    language_pb2_grpc.add_LanguageRuntimeServicer_to_server(Host(program), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"127.0.0.1:{port}", flush=True)
    # Serve until the parent closes our stdin or stops us.
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    stop.wait()
    server.stop(grace=None)


if __name__ == "__main__":
    serve(Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd())

"""`python -m tests.cluster build | run -- COMMAND [ARGS] | up`: the test control plane by hand or in CI."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import threading
import time
from types import FrameType

from tests.cluster.build import ensure_binaries
from tests.cluster.controlplane import running_cluster


def _exit_on_sigterm() -> None:
    # SIGTERM (e.g. from CI) unwinds like Ctrl-C, so the cluster is torn down.
    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.cluster", description=__doc__)
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("build", help="build or reuse the cached control-plane binaries, then exit")
    run = sub.add_parser("run", help="start the cluster, run COMMAND with KUBECONFIG set, tear down")
    run.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS]")
    sub.add_parser("up", help="start the cluster and wait until Ctrl-C")
    args = parser.parse_args(argv)
    _exit_on_sigterm()

    def log(message: str) -> None:
        print(f"[tests.cluster] {message}", file=sys.stderr, flush=True)

    if args.action == "build":
        started = time.monotonic()
        path = ensure_binaries(log)
        log(f"binaries in {path} ({time.monotonic() - started:.0f} s)")
        return 0
    command = list(getattr(args, "command", []) or [])
    if command[:1] == ["--"]:
        command = command[1:]
    if args.action == "run" and not command:
        parser.error("run needs a command: python -m tests.cluster run -- COMMAND [ARGS]")
    try:
        with running_cluster(log) as cluster:
            if args.action == "run":
                return subprocess.run(command, env=cluster.env).returncode
            log(f"export KUBECONFIG={cluster.kubeconfig} PATH={cluster.bin_dir}:$PATH")
            log("cluster is up; Ctrl-C stops it")
            threading.Event().wait()
    except KeyboardInterrupt:
        log("stopping")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

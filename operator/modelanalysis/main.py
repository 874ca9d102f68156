"""`model-analyzer`: the operator's Job commands start without the CLI's imports; everything else is the CLI."""

from __future__ import annotations

import sys


def main() -> None:
    argv = sys.argv[1:]
    if argv and argv[0] in ("perf-point", "copy-results"):
        from modelanalysis import job_commands

        sys.exit(job_commands.run(argv[0], argv[1:]))
    from modelanalysis import cli

    cli.main()

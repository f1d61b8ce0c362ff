"""``pyinit-doctor [PATH]...``: its own program, so that ``pyinit doctor`` still runs a command named doctor.

Exit 0 when nothing is wrong (warnings and notes included), 1 when a finding
is an error, 2 when the input cannot be read (one line naming file and line).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from pyinit import __version__


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.argument("paths", nargs=-1, metavar="[PATH]...")
@click.option(
    "--format",
    "output",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="The report's form.",
)
@click.version_option(__version__, "-V", "--version", prog_name="pyinit-doctor")
def command(paths: tuple[str, ...], output: str) -> int:
    """Find the 502 risks in Dockerfiles and Kubernetes YAML (files, directories, - for stdin; default .).

    Exit status: 0 nothing wrong, 1 an error found, 2 unreadable input.
    """
    from pyinit.doctor import checks, dockerfile, load, manifest, render

    inputs = load.read(paths or (".",))
    images = [dockerfile.read(item) for item in inputs.dockerfiles]
    inventory = manifest.build(inputs.documents)
    report = render.Report(checks.run(inventory, images), inventory, inputs, len(images))
    sys.stdout.write(render.as_json(report) if output == "json" else render.text(report))
    return report.exit_code


def run(argv: Sequence[str]) -> int:
    from pyinit.doctor.load import InputError

    try:
        result = command.main(args=list(argv), prog_name="pyinit-doctor", standalone_mode=False)
    except (click.ClickException, InputError) as exc:
        message = exc.format_message() if isinstance(exc, click.ClickException) else str(exc)
        sys.stderr.write(f"[pyinit-doctor] error: {message}\n")
        return 2
    return result if isinstance(result, int) else 0


def main() -> None:
    try:
        code = run(sys.argv[1:])
        sys.stdout.flush()
    except BrokenPipeError:  # the report piped into head: what was wanted has been read
        code = 0
    sys.exit(code)


if __name__ == "__main__":
    main()

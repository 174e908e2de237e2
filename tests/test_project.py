"""Drift checks: the README's commands are the ones CI runs, and the code stays ruff-clean."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```(?:bash|sh)\n(.*?)\n```", text, flags=re.S)[:2]


def test_readme_starts_with_run_and_test_commands_and_ci_runs_the_test_one():
    run_cmd, test_cmd = readme_commands()
    assert "paperradar" in run_cmd and "pip install" in run_cmd
    assert "pytest" in test_cmd
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_cmd.strip() in ci


def test_ruff_clean():
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(ruff).exists():
        pytest.fail("ruff is not installed: it is part of the [test] extra")
    out = subprocess.run([ruff, "check", "paperradar", "tests", "bench", "scripts"], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_command_has_help():
    """Every command and group, found by walking the click tree (a new command is covered by itself)."""
    import click
    from click.testing import CliRunner

    from paperradar.cli import cli

    def paths(group: click.Group, prefix: list[str]):
        yield [*prefix, "--help"]
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                yield from paths(command, [*prefix, name])
            else:
                yield [*prefix, name, "--help"]

    runner = CliRunner()
    seen = 0
    for path in paths(cli, []):
        result = runner.invoke(cli, path)
        assert result.exit_code == 0 and "Usage:" in result.output, path
        command = cli
        for name in path[:-1]:
            command = command.commands[name]
        assert (command.help or command.short_help or "").strip(), f"{' '.join(path[:-1])} has no help"
        seen += 1
    assert seen >= 20


def test_the_cron_jobs_do_not_import_the_web_app():
    """`paperradar digest send` from cron reads the settings and runs the digest job without the web app
    (and without FastAPI) in the process."""
    code = ("import sys; from paperradar import cli, config, digest, jobs; "
            "from click.testing import CliRunner; import tempfile; d = tempfile.mkdtemp(); "
            "env = {'PAPERRADAR_SMTP_HOST': '127.0.0.1', 'PAPERRADAR_MAIL_FROM': 'radar@example.org'}; "
            "r = CliRunner().invoke(cli.cli, ['--data-dir', d, 'digest', 'send', '--json'], env=env); "
            "assert r.exit_code == 0, (r.output, r.exception); "
            "print(sorted(m for m in sys.modules if m.startswith(('paperradar.web', 'fastapi'))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"

"""The command table: every row registers its verb, and the help lists every verb.

Run: pytest tests/test_cli.py -q
"""

from typer.testing import CliRunner

from affect_mllm.cli import COMMANDS, build_app


def _verbs(app) -> set[str]:
    return {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}


def test_every_row_of_the_table_registers_its_verb():
    app = build_app()
    assert {verb for verb, _ in COMMANDS} == _verbs(app)


def test_help_lists_every_verb():
    result = CliRunner().invoke(build_app(), ["--help"], prog_name="affect-mllm")
    assert result.exit_code == 0
    for verb, _ in COMMANDS:
        assert verb in result.output

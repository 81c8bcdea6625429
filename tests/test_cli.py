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


def test_train_names_a_bad_manifest_without_a_traceback(tmp_path):
    manifest = tmp_path / "train.jsonl"
    manifest.write_text('{"id": "x", "video": "missing.mp4", "emotion": "happy", "emotions": ["happy"]}\n')
    result = CliRunner().invoke(build_app(), ["train", "sft", "--config", "recipes/tiny-omni/sft.yaml",
                                              "--train_manifest", str(manifest), "--output_dir",
                                              str(tmp_path / "out"), "--dry_run", "true"])
    assert result.exit_code == 2, result.output
    assert f"error: {tmp_path / 'missing.mp4'}: file not found" in result.output
    assert "Traceback" not in result.output

"""What a user trips on, run as the user runs it (the `graft` CLI): one line, exit 1, nothing left behind."""

import json
import subprocess

import pandas as pd

from tests.shrink import write_params


def graft(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(["graft", *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def _one_line_error(res: subprocess.CompletedProcess, command: str) -> str:
    """The error line (progress lines carry a timestamp and come before it); no traceback."""
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith(f"graft {command}: error: ")]
    assert len(errors) == 1, res.stderr
    return errors[0]


def test_predict_names_a_missing_input_file_and_a_torch_folder_given_for_a_package(stage_run, tmp_path):
    line = _one_line_error(graft("predict", "--model", str(stage_run["onnx"]), "--input", str(tmp_path / "no.txt")),
                           "predict")
    assert "no.txt: No such file or directory" in line
    line = _one_line_error(graft("predict", "--model", str(stage_run["finetune"]), "--input", "/dev/null"), "predict")
    assert "a trained PyTorch model folder" in line and "graft export" in line


def test_summary_and_report_refuse_a_missing_metrics_folder(shrunk, tmp_path):
    write_params(tmp_path, shrunk[0])
    for command in (["summary", "--metrics-dir", str(tmp_path / "none"), "--package", "models/onnx"],
                    ["report", "--metrics-dir", str(tmp_path / "none"), "--out", str(tmp_path / "r.html")]):
        assert "no such metrics folder" in _one_line_error(graft(*command, cwd=tmp_path), command[0])
    assert not (tmp_path / "r.html").exists()


def test_moves_without_a_registry_say_so_and_leave_no_empty_mlflow_db(stage_run, shrunk, tmp_path):
    params, _ = shrunk
    own = json.loads(json.dumps(params))
    own["registry"].update(tracking_uri="sqlite:///mlflow.db", artifact_location=str(tmp_path / "art"))
    write_params(tmp_path, own)
    for command in (["history"], ["rollback", "--splits", str(stage_run["splits"])],
                    ["promote", "--version", "1", "--reason", "r", "--splits", str(stage_run["splits"])]):
        assert "no registry at sqlite:///mlflow.db" in _one_line_error(graft(*command, cwd=tmp_path), command[0])
    assert not (tmp_path / "mlflow.db").exists()


def test_prepare_checks_the_label_column_and_lists_the_files_columns(shrunk, tmp_path):
    params, _ = shrunk
    raw = tmp_path / "raw.csv"
    pd.DataFrame({"Content": ["one text", "another"], "Writer": ["a", "b"]}).to_csv(raw, index=False)
    own = json.loads(json.dumps(params))
    own["data"].update(raw=str(raw), cutoff=None, text_column="Content", label_column="Author")
    write_params(tmp_path, own)
    line = _one_line_error(graft("prepare", "--raw", str(raw), "--out", str(tmp_path / "prepared"), cwd=tmp_path),
                           "prepare")
    assert "no label column 'Author' (set data.label_column); the file has: Content, Writer" in line
    assert not (tmp_path / "prepared").exists()


def test_every_subcommand_has_a_help_line_and_a_description():
    from graft.cli import _parser

    sub = next(a for a in _parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    helps = {a.dest: a.help for a in sub._choices_actions}
    for name, parser in sub.choices.items():
        assert helps.get(name) and len((parser.description or "").split()) >= 5, name
    res = graft("summary", "--help")
    assert res.returncode == 0 and "Print the run's text summary" in res.stdout

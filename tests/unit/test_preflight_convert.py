"""``make convert``: question/answer JSONL or CSV into the RFT format."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from preflight.convert import ConvertError, ConvertOptions, convert_file, gsm8k_final_answer, main
from tests.conftest import FIXTURE_DATASETS
from tests.lambda_loader import ROOT, SHARED_DATA

MARKER = "<!-- preflight:convert-gsm8k -->"


def _documented_commands() -> list[list[str]]:
    """The ``make convert`` commands under docs/preflight.md's marker, split as a shell would."""
    readme = (ROOT / "docs" / "preflight.md").read_text(encoding="utf-8")
    assert MARKER in readme, "docs/preflight.md lost the documented GSM8K convert command"
    block = readme.split(MARKER, 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    joined = block.replace("\\\n", " ")
    return [shlex.split(line) for line in joined.splitlines() if line.strip()]


def _make_convert(*settings: str) -> subprocess.CompletedProcess[str]:
    """``make convert`` with these settings; -o: on this interpreter instead of (re)building
    the project's .venv."""
    command = ["make", "--no-print-directory", "-o", ".venv/.installed", "convert"]
    return subprocess.run(
        [*command, f"PY={sys.executable}", *settings],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def test_documented_command_reproduces_the_example_dataset(tmp_path: Path) -> None:
    """The README's commands rebuild the example dataset byte for byte: compared with the
    tests' own copy (tests/fixtures/datasets/), since datasets/ is the user's to change."""
    commands = _documented_commands()
    assert len(commands) == 2
    outputs = set()
    for command in commands:
        assert command[:2] == ["make", "convert"]
        settings = dict(arg.split("=", 1) for arg in command[2:])
        committed = FIXTURE_DATASETS / Path(settings["OUTPUT"]).relative_to("datasets")
        outputs.add(settings["OUTPUT"])
        source = settings["INPUT"]
        assert source.startswith("../shared/data/")
        settings["INPUT"] = str(SHARED_DATA / source.removeprefix("../shared/data/"))
        settings["OUTPUT"] = str(tmp_path / committed.name)
        run = _make_convert(*(f"{k}={v}" for k, v in settings.items()))
        assert run.returncode == 0, run.stderr
        assert (tmp_path / committed.name).read_bytes() == committed.read_bytes()
    assert outputs == {"datasets/gsm8k/train.jsonl", "datasets/gsm8k/validation.jsonl"}


def test_gsm8k_record_shape() -> None:
    first = (FIXTURE_DATASETS / "gsm8k" / "validation.jsonl").read_text("utf-8").splitlines()[0]
    record = json.loads(first)
    assert list(record) == ["id", "messages", "reference_answer"]
    assert record["id"] == "gsm8k-validation-00000"
    assert [m["role"] for m in record["messages"]] == ["system", "user"]
    assert record["reference_answer"] == {"final_answer": "18"}
    assert first == json.dumps(record, ensure_ascii=False)


@pytest.mark.parametrize(
    ("answer", "final"),
    [
        ("So 3+4=7.\n#### 7", "7"),
        ("#### 2,125", "2125"),
        ("a\n#### -12 ", "-12"),
        ("#### 1\n#### 1,000,000", "1000000"),
    ],
)
def test_gsm8k_final_answer(answer: str, final: str) -> None:
    assert gsm8k_final_answer(answer) == final


def test_thousands_separators_from_the_real_data_are_removed(tmp_path: Path) -> None:
    out = tmp_path / "all.jsonl"
    convert_file(SHARED_DATA / "gsm8k" / "train.jsonl", out, ConvertOptions(gsm8k=True))
    answers = [
        json.loads(line)["reference_answer"]["final_answer"]
        for line in out.read_text(encoding="utf-8").split("\n")
        if line
    ]
    assert len(answers) == 7_473
    assert all(re.fullmatch(r"-?\d+", a) for a in answers)


def test_csv_with_chosen_fields_system_file_and_kept_fields(tmp_path: Path) -> None:
    source = tmp_path / "qa.csv"
    source.write_text(
        "\ufeffprompt,label,topic\n"
        '"Is the sky blue?\nAnswer yes or no.",yes,nature\n'
        "Is 7 even?,no,maths\n",
        encoding="utf-8",
    )
    system = tmp_path / "system.txt"
    system.write_text("Answer yes or no.\n", encoding="utf-8")
    out = tmp_path / "out" / "train.jsonl"
    code = main(
        [
            "--input",
            str(source),
            "--output",
            str(out),
            "--question-field",
            "prompt",
            "--answer-field",
            "label",
            "--system-file",
            str(system),
            "--answer-key",
            "",
            "--keep-field",
            "topic",
            "--id-prefix",
            "yn",
        ]
    )
    assert code == 0
    lines = out.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [
        {
            "id": "yn-00000",
            "messages": [
                {"role": "system", "content": "Answer yes or no."},
                {"role": "user", "content": "Is the sky blue?\nAnswer yes or no."},
            ],
            "reference_answer": "yes",
            "topic": "nature",
        },
        {
            "id": "yn-00001",
            "messages": [
                {"role": "system", "content": "Answer yes or no."},
                {"role": "user", "content": "Is 7 even?"},
            ],
            "reference_answer": "no",
            "topic": "maths",
        },
    ]


def test_offset_and_limit_number_ids_from_zero(tmp_path: Path) -> None:
    source = tmp_path / "qa.jsonl"
    source.write_text(
        "".join(json.dumps({"q": f"Q{i}", "a": i}) + "\n" for i in range(10)), encoding="utf-8"
    )
    out = tmp_path / "o.jsonl"
    count = convert_file(
        source,
        out,
        ConvertOptions(question_field="q", answer_field="a", offset=3, limit=4, id_prefix="x"),
    )
    records = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert count == 4
    assert [r["id"] for r in records] == ["x-00000", "x-00001", "x-00002", "x-00003"]
    assert [r["reference_answer"] for r in records] == [
        {"final_answer": str(i)} for i in range(3, 7)
    ]
    assert "system" not in json.dumps(records)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            b'{"question": "a", "answer": "#### 1"}\n{"question": "b"}\n',
            "line 2: no field 'answer' (fields: question)",
        ),
        (
            b'{"question": "a", "answer": "#### 1"}\n\n{"question": "b", "answer": "2"}\n',
            "line 3: field 'answer': no '#### <answer>' line",
        ),
        (
            b'{"question": "a", "answer": "#### 1"}\n{"question": "b", "answer": ',
            "line 2: not valid JSON",
        ),
        (b'{"question": "\xff", "answer": "#### 1"}\n', "line 1: not valid UTF-8"),
        (b'{"question": " ", "answer": "#### 1"}\n', "line 1: field 'question' is empty"),
    ],
)
def test_bad_input_names_file_and_line_and_keeps_old_output(
    tmp_path: Path, content: bytes, message: str
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(content)
    out = tmp_path / "out.jsonl"
    out.write_text("previous\n", encoding="utf-8")
    with pytest.raises(ConvertError) as err:
        convert_file(source, out, ConvertOptions(gsm8k=True))
    assert str(err.value).startswith(f"{source} {message}")
    assert "\n" not in str(err.value)
    # the previous output is untouched and no temporary file is left behind
    assert out.read_text(encoding="utf-8") == "previous\n"
    assert {p.name for p in tmp_path.iterdir()} == {"in.jsonl", "out.jsonl"}


def test_cli_reports_bad_input_on_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in.csv"
    source.write_text("question,answer\nWhat?,\n", encoding="utf-8")
    assert main(["--input", str(source), "--output", str(tmp_path / "o.jsonl")]) == 1
    err = capsys.readouterr().err
    assert err == f"convert: {source} line 2: field 'answer' is empty or not text\n"


def test_every_bad_row_is_reported_one_line_each_and_nothing_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [b'{"question": "a", "answer": "#### 1"}', b'{"question": "b"}', b"[1]", b"{oops"]
    rows += [b'{"question": "c", "answer": "no marker"}'] * 25
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"\n".join(rows) + b"\n")
    out = tmp_path / "out.jsonl"
    assert main(["--input", str(source), "--output", str(out), "--gsm8k"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[:3] == [
        f"convert: {source} line 2: no field 'answer' (fields: question)",
        f"convert: {source} line 3: expected a JSON object",
        f"convert: {source} line 4: not valid JSON: Expecting property name enclosed in double"
        " quotes (column 2)",
    ]
    assert lines[3] == f"convert: {source} line 5: field 'answer': no '#### <answer>' line"
    assert len(lines) == 21  # 20 shown, then the count of the rest
    assert lines[-1] == "convert: ... and 8 more bad rows; nothing was written"
    assert not out.exists()
    assert {p.name for p in tmp_path.iterdir()} == {"in.jsonl"}


def test_make_convert_keeps_fields_and_leaves_out_excluded_answers(tmp_path: Path) -> None:
    source = tmp_path / "math.jsonl"
    rows = [
        {"problem": "A?", "answer": "\\frac{1}{2}", "unique_id": "a", "level": 1},
        {"problem": "B?", "answer": "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "unique_id": "b"},
        {"problem": "C?", "answer": "52_8", "unique_id": "c", "level": 3},
        {"problem": "D?", "answer": "$18", "unique_id": "d", "level": 4},
    ]
    source.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    run = _make_convert(
        f"INPUT={source}",
        f"OUTPUT={out}",
        "QUESTION=problem",
        "ID_PREFIX=m",
        "KEEP=unique_id",
        "EXCLUDE_ANSWER=pmatrix|[0-9]_\\{?[0-9]",
        "SYSTEM_PROMPT=Answer in \\boxed{}.",
    )
    assert run.returncode == 0, run.stderr
    records = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert [(r["id"], r["unique_id"], r["reference_answer"]) for r in records] == [
        ("m-00000", "a", {"final_answer": "\\frac{1}{2}"}),
        ("m-00001", "d", {"final_answer": "$18"}),
    ]
    assert records[0]["messages"][0]["content"] == "Answer in \\boxed{}."
    assert "level" not in records[0]
    assert f"left out 2 rows whose answer matches --exclude-answer ({source} line 2, 3)" in (
        run.stderr
    )


def test_a_bad_exclude_pattern_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"question": "a", "answer": "1"}\n', encoding="utf-8")
    args = ["--input", str(source), "--output", str(tmp_path / "o.jsonl")]
    assert main([*args, "--exclude-answer", "[0-9"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("convert: --exclude-answer: not a regular expression: ")
    assert err.count("\n") == 1
    assert not (tmp_path / "o.jsonl").exists()

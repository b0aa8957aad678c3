"""Dataset checks of ``make preflight``: each check against a file that triggers it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from preflight.convert import ConvertOptions, convert_file
from preflight.dataset import DatasetResult, Limits, check_dataset, check_overlap
from preflight.findings import Findings
from preflight.tokens import estimate_prompt_tokens, estimate_text_tokens
from tests.lambda_loader import SHARED_DATA

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "preflight"
GSM8K_SYSTEM = (
    "Solve the grade-school math problem. Reason step by step, then give the final answer "
    "on the last line in the form '#### <number>'."
)


def _check(path: Path, limits: Limits | None = None) -> tuple[Findings, DatasetResult]:
    findings = Findings()
    result = check_dataset(path, "train", limits or Limits(), findings, display=path.name)
    return findings, result


def _record(i: int, **change: object) -> dict[str, object]:
    record: dict[str, object] = {
        "id": f"r-{i}",
        "messages": [{"role": "user", "content": f"What is {i} times 2?"}],
        "reference_answer": str(2 * i),
    }
    record.update(change)
    return record


def _write(path: Path, records: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("fixture", "code", "line", "words"),
    [
        ("bad_json.jsonl", "invalid-json", 7, "not valid JSON"),
        ("missing_reference.jsonl", "reference-missing", 12, "reference_answer is missing"),
        ("assistant_last.jsonl", "last-not-user", 23, 'last message is from "assistant"'),
        ("empty_message.jsonl", "empty-content", 31, "messages[1].content is empty"),
        ("duplicate_id.jsonl", "duplicate-id", 45, 'id "q-002" already used on line 3'),
        ("unknown_role.jsonl", "unknown-role", 58, 'messages[0].role "tool" is not one of'),
        ("invalid_utf8.jsonl", "invalid-utf8", 64, "not valid UTF-8 (byte 0xff"),
        ("messages_empty.jsonl", "messages-empty", 9, "non-empty list"),
        ("not_object.jsonl", "not-object", 5, "expected a JSON object, got list"),
        ("bad_content.jsonl", "bad-content", 77, "messages[0].content must be a string"),
        ("blank_line.jsonl", "blank-line", 50, "blank line"),
    ],
)
def test_each_broken_file_gives_exactly_its_error_at_its_line(
    fixture: str, code: str, line: int, words: str
) -> None:
    findings, _ = _check(FIXTURES / fixture)
    assert findings.codes("error") == {code}
    group = findings.group(code)
    assert group is not None and group.count == 1
    assert group.examples[0].startswith(f"{fixture} line {line}: ")
    assert words in group.examples[0]


def test_good_fixture_passes_without_findings() -> None:
    findings, result = _check(FIXTURES / "good.jsonl")
    assert findings.groups == []
    assert result.records == len(result.valid) == 150


def test_fifty_records_are_rejected_naming_the_minimum() -> None:
    findings, _ = _check(FIXTURES / "too_few.jsonl")
    group = findings.group("too-few-records")
    assert group is not None
    assert group.examples == ["too_few.jsonl: 50 records; the minimum is 100"]


def test_more_than_20000_records_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    line = json.dumps(_record(1)) + "\n"
    # distinct ids keep the duplicate-id check quiet; the prompt repeats (a warning only)
    path.write_text(
        "".join(line.replace('"r-1"', f'"r-{i}"') for i in range(20_001)), encoding="utf-8"
    )
    findings, _ = _check(path)
    assert findings.codes("error") == {"too-many-records"}
    group = findings.group("too-many-records")
    assert group is not None and group.examples == [
        "big.jsonl: 20,001 records; the maximum is 20,000"
    ]


def test_five_thousand_bad_lines_make_one_counted_group(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    good = [json.dumps(_record(i)) for i in range(200)]
    path.write_text("\n".join(good + ["{not json"] * 5_000) + "\n", encoding="utf-8")
    findings, _ = _check(path)
    group = findings.group("invalid-json")
    assert group is not None
    assert group.count == 5_000
    assert len(group.examples) == 5
    assert group.examples[0].startswith("train.jsonl line 201: not valid JSON")
    assert [g.code for g in findings.groups] == ["invalid-json"]


def test_several_problems_on_one_line_are_all_reported(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "t.jsonl",
        [_record(i) for i in range(100)]
        + [
            {"id": "r-5", "messages": [{"role": "bot", "content": ""}]},
        ],
    )
    findings, result = _check(path)
    assert findings.codes("error") == {
        "duplicate-id",
        "unknown-role",
        "empty-content",
        "reference-missing",
        "last-not-user",
    }
    for group in findings.groups:
        assert group.examples[0].startswith("t.jsonl line 101: ")
    assert len(result.valid) == 100


def test_null_reference_is_an_error_and_empty_reference_a_warning(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "t.jsonl",
        [_record(i) for i in range(100)]
        + [
            _record(100, reference_answer=None),
            _record(101, reference_answer=""),
        ],
    )
    findings, _ = _check(path)
    null = findings.group("reference-missing")
    assert null is not None and null.examples == ["t.jsonl line 101: reference_answer is null"]
    empty = findings.group("reference-empty", "warning")
    assert empty is not None and empty.examples[0].startswith("t.jsonl line 102: ")
    assert findings.codes("warning") == {"reference-empty"}


def test_ids_must_be_strings_or_integers(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "t.jsonl",
        [_record(i) for i in range(100)]
        + [
            _record(100, id=["x"]),
            _record(101, id=7),
            _record(102, id=""),
        ],
    )
    findings, _ = _check(path)
    group = findings.group("bad-id")
    assert group is not None and group.count == 2
    assert [e.split(":")[0] for e in group.examples] == ["t.jsonl line 101", "t.jsonl line 103"]


def test_content_blocks_are_accepted_and_checked(tmp_path: Path) -> None:
    blocks = [{"type": "text", "text": "What is 2 plus 2?"}]
    empty_blocks = [{"type": "text", "text": " "}]
    path = _write(
        tmp_path / "t.jsonl",
        [_record(i) for i in range(100)]
        + [
            _record(100, messages=[{"role": "user", "content": blocks}]),
            _record(101, messages=[{"role": "user", "content": empty_blocks}]),
        ],
    )
    findings, _ = _check(path)
    assert findings.codes("error") == {"empty-content"}
    group = findings.group("empty-content")
    assert group is not None and group.examples[0].startswith("t.jsonl line 102: ")


def test_prompts_over_max_prompt_length_are_reported_as_filtered(tmp_path: Path) -> None:
    long_question = "Explain " + "very " * 400 + "carefully what 2 plus 2 is."
    records = [_record(i) for i in range(100)] + [
        _record(100, messages=[{"role": "user", "content": long_question}])
    ]
    findings, result = _check(_write(tmp_path / "t.jsonl", records), Limits(max_prompt_tokens=200))
    assert findings.codes("error") == set()
    group = findings.group("prompt-too-long", "warning")
    assert group is not None and group.count == 1
    assert group.examples[0].startswith("t.jsonl line 101: prompt is about ")
    assert "over maxPromptLength 200: training skips it" in group.examples[0]
    assert result.over_prompt_limit == 1


def test_too_few_prompts_left_after_length_filtering_is_an_error(tmp_path: Path) -> None:
    records = [_record(i) for i in range(120)]
    findings, _ = _check(_write(tmp_path / "t.jsonl", records), Limits(max_prompt_tokens=5))
    group = findings.group("too-few-after-filter")
    assert group is not None
    assert group.examples == ["t.jsonl: only 0 prompts fit maxPromptLength 5; the minimum is 100"]


def test_oversized_records_warn_and_records_past_the_payload_limit_fail(
    tmp_path: Path,
) -> None:
    records = [_record(i) for i in range(100)] + [
        _record(100, notes="x" * 3_000),
        _record(101, notes="y" * 20_000),
    ]
    findings, _ = _check(
        _write(tmp_path / "t.jsonl", records),
        Limits(warn_record_bytes=2_000, max_record_bytes=10_000),
    )
    large = findings.group("record-large", "warning")
    too_large = findings.group("record-too-large")
    assert large is not None and large.examples[0].startswith("t.jsonl line 101: record is ")
    assert too_large is not None and too_large.examples[0].startswith("t.jsonl line 102: ")
    assert "payload limit is 10,000" in too_large.examples[0]


def test_duplicate_prompts_and_train_validation_overlap_are_warnings(tmp_path: Path) -> None:
    train_records = [_record(i) for i in range(100)] + [_record(3, id="again")]
    findings = Findings()
    train = check_dataset(
        _write(tmp_path / "train.jsonl", train_records),
        "train",
        Limits(),
        findings,
        display="train.jsonl",
    )
    validation = check_dataset(
        _write(tmp_path / "val.jsonl", [_record(500), _record(7, id="v-7")]),
        "validation",
        Limits(min_records=1),
        findings,
        display="val.jsonl",
    )
    check_overlap(train, validation, findings)
    assert findings.codes("error") == set()
    dup = findings.group("duplicate-prompt", "warning")
    assert dup is not None and dup.examples == ["train.jsonl line 101: same messages as line 4"]
    overlap = findings.group("validation-in-train", "warning")
    assert overlap is not None
    assert overlap.examples == ["val.jsonl line 2: same messages as train.jsonl line 8"]


def test_system_message_after_other_turns_is_a_warning(tmp_path: Path) -> None:
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "system", "content": "Be brief"},
        {"role": "user", "content": "What is 1 plus 1?"},
    ]
    path = _write(
        tmp_path / "t.jsonl", [_record(i) for i in range(100)] + [_record(100, messages=messages)]
    )
    findings, _ = _check(path)
    assert findings.codes() == {"system-not-first"}


def test_shared_gsm8k_converted_passes(tmp_path: Path) -> None:
    out = tmp_path / "train.jsonl"
    options = ConvertOptions(system=GSM8K_SYSTEM, gsm8k=True, id_prefix="gsm8k-train", limit=2_000)
    assert convert_file(SHARED_DATA / "gsm8k" / "train.jsonl", out, options) == 2_000
    findings, result = _check(out, Limits(max_prompt_tokens=4096))
    assert findings.groups == []
    stats = result.token_stats()
    assert 60 < stats["median"] < 200 and stats["max"] < 4096


def test_token_estimate_is_about_four_thirds_per_english_word() -> None:
    text = (SHARED_DATA / "gsm8k" / "train.jsonl").read_text(encoding="utf-8")
    questions = [json.loads(line)["question"] for line in text.splitlines()[:300]]
    words = sum(len(q.split()) for q in questions)
    tokens = sum(estimate_text_tokens(q) for q in questions)
    assert 1.1 < tokens / words < 1.6
    assert estimate_text_tokens("") == 0
    assert estimate_text_tokens("12345") == 2  # digits in groups of three
    assert estimate_text_tokens("日本語") == 3  # one per non-ASCII character
    two = estimate_prompt_tokens(
        [{"role": "system", "content": "a"}, {"role": "user", "content": "b"}]
    )
    one = estimate_prompt_tokens([{"role": "user", "content": "b"}])
    assert two - one == 5  # one message's overhead plus its one token

"""Turn plain question/answer data (JSONL or CSV) into the RFT JSONL format.

Each input row becomes one line ``{"id", "messages", "reference_answer", ...}``: an optional
system message, the question as the user's message, and the answer as
``reference_answer = {"<answer key>": answer}`` (or the bare answer with ``--answer-key ''``).
With ``--gsm8k`` the answer is GSM8K's worked solution and only its final line ``#### N`` is
kept, without thousands separators (``#### 2,125`` -> ``"2125"``). ``--exclude-answer REGEX``
leaves out the rows whose answer it matches (answers the grader cannot read), reported with
their lines; they are not numbered. Lines are written as
``json.dumps(record, ensure_ascii=False)``, so the output is byte-for-byte reproducible.

Usage::

    python -m preflight.convert --input data.csv --output datasets/x/train.jsonl \\
        --question-field prompt --answer-field label --system "..." --limit 500
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from preflight.findings import plural


class ConvertError(ValueError):
    """Problems with the input, each naming the file and line (``lines``: one per problem)."""

    def __init__(self, *lines: str) -> None:
        super().__init__("; ".join(lines))
        self.lines = list(lines)


SHOWN_PROBLEMS = 20  # the bad rows printed one per line; the rest are counted


@dataclass(frozen=True)
class ConvertOptions:
    """How rows map to RFT records."""

    question_field: str = "question"
    answer_field: str = "answer"
    system: str | None = None
    gsm8k: bool = False
    answer_key: str = "final_answer"
    id_prefix: str = "record"
    keep_fields: tuple[str, ...] = ()
    offset: int = 0
    limit: int | None = None
    exclude_answer: re.Pattern[str] | None = None


def gsm8k_final_answer(answer: str) -> str:
    """The final answer of a GSM8K solution: what follows the last ``####``, no separators."""
    _, marker, final = answer.rpartition("####")
    if not marker:
        raise ValueError("no '#### <answer>' line")
    final = final.strip().replace(",", "")
    if not final:
        raise ValueError("nothing after '####'")
    return final


def _rows(path: Path, fmt: str) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line number, row) of a JSONL or CSV file, or (line number, problem) for a JSONL line
    that is not a JSON object; blank JSONL lines are skipped."""
    if fmt == "csv":
        # utf-8-sig: spreadsheet exports often start with a byte-order mark.
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            start = 2  # the header is line 1; a quoted field may span lines
            try:
                for row in reader:
                    yield start, dict(row)
                    start = reader.line_num + 1
            except UnicodeDecodeError:
                raise ConvertError(f"{path} line {start}: not valid UTF-8") from None
            except csv.Error as err:
                raise ConvertError(f"{path} line {start}: {err}") from None
        return
    with path.open("rb") as binary:
        for number, raw in enumerate(binary, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                yield number, f"{path} line {number}: not valid UTF-8 (column {err.start + 1})"
                continue
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as err:
                problem = f"not valid JSON: {err.msg} (column {err.colno})"
                yield number, f"{path} line {number}: {problem}"
                continue
            if not isinstance(row, dict):
                yield number, f"{path} line {number}: expected a JSON object"
                continue
            yield number, row


def _text(row: dict[str, Any], name: str, where: str) -> str:
    if name not in row:
        raise ConvertError(f"{where}: no field '{name}' (fields: {', '.join(map(str, row))})")
    value = row[name]
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise ConvertError(f"{where}: field '{name}' is empty or not text")
    return value


def convert_rows(
    rows: Iterator[tuple[int, dict[str, Any] | str]],
    options: ConvertOptions,
    source: str,
    excluded: list[int] | None = None,
    problems: list[str] | None = None,
) -> Iterator[dict[str, Any]]:
    """RFT records from (line, row) pairs, numbered from 0 after ``offset``; the lines of the
    rows left out by ``exclude_answer`` are appended to ``excluded``. With ``problems``, a bad
    row is appended there and the conversion goes on (every bad row is reported, not only the
    first); without, the first one raises :class:`ConvertError`."""
    index = 0
    for position, (line, row) in enumerate(rows):
        if position < options.offset:
            continue
        if options.limit is not None and index >= options.limit:
            return
        try:
            record = _record(line, row, options, source=source, index=index, excluded=excluded)
        except ConvertError as err:
            if problems is None:
                raise
            problems.extend(err.lines)
            continue
        if record is not None:
            yield record
            index += 1


def _record(
    line: int,
    row: dict[str, Any] | str,
    options: ConvertOptions,
    *,
    source: str,
    index: int,
    excluded: list[int] | None,
) -> dict[str, Any] | None:
    """The RFT record of one row, or None when ``exclude_answer`` leaves it out."""
    if isinstance(row, str):
        raise ConvertError(row)
    where = f"{source} line {line}"
    question = _text(row, options.question_field, where)
    answer = _text(row, options.answer_field, where)
    if options.gsm8k:
        try:
            answer = gsm8k_final_answer(answer)
        except ValueError as err:
            raise ConvertError(f"{where}: field '{options.answer_field}': {err}") from None
    if options.exclude_answer is not None and options.exclude_answer.search(answer):
        if excluded is not None:
            excluded.append(line)
        return None
    messages = [{"role": "user", "content": question}]
    if options.system:
        messages.insert(0, {"role": "system", "content": options.system})
    record: dict[str, Any] = {
        "id": f"{options.id_prefix}-{index:05d}",
        "messages": messages,
        "reference_answer": {options.answer_key: answer} if options.answer_key else answer,
    }
    for name in options.keep_fields:
        if name not in row:
            raise ConvertError(f"{where}: no field '{name}' to keep")
        record[name] = row[name]
    return record


def convert_file(
    source: Path,
    output: Path | None,
    options: ConvertOptions,
    fmt: str = "auto",
    excluded: list[int] | None = None,
) -> int:
    """Convert ``source`` into ``output`` (stdout when None); return the number of records.
    The lines of the rows ``exclude_answer`` leaves out are appended to ``excluded``.

    The output file is replaced only when the whole conversion succeeds.
    """
    if fmt == "auto":
        fmt = "csv" if source.suffix.lower() == ".csv" else "jsonl"
    if not source.is_file():
        raise ConvertError(f"{source}: no such file")
    problems: list[str] = []
    records = convert_rows(_rows(source, fmt), options, str(source), excluded, problems)
    if output is None:
        # Nothing is printed unless every row converts.
        converted = list(records)
        if problems:
            raise ConvertError(*problems)
        for record in converted:
            sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
        return len(converted)
    output.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 (renamed into place below)
        "w",
        encoding="utf-8",
        newline="\n",
        dir=output.parent,
        prefix=f".{output.name}.",
        delete=False,
    )
    count = 0
    try:
        with handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                count += 1
        if problems:
            raise ConvertError(*problems)
        # A temporary file is created 0600; the output gets the mode any new file would.
        os.chmod(handle.name, 0o666 & ~_umask())
        os.replace(handle.name, output)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
    return count


def _umask() -> int:
    """The process's umask (reading it means setting it; it is put back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of ``python -m preflight.convert``."""
    parser = argparse.ArgumentParser(
        prog="python -m preflight.convert",
        description="Convert question/answer JSONL or CSV into the RFT JSONL format.",
    )
    parser.add_argument("--input", required=True, type=Path, help="JSONL or CSV file")
    parser.add_argument("--output", type=Path, help="RFT JSONL file to write (default: stdout)")
    parser.add_argument(
        "--format",
        choices=("auto", "jsonl", "csv"),
        default="auto",
        help="input format (default: from the file extension)",
    )
    parser.add_argument(
        "--question-field",
        default="question",
        help="field holding the question (default: question)",
    )
    parser.add_argument(
        "--answer-field", default="answer", help="field holding the answer (default: answer)"
    )
    system = parser.add_mutually_exclusive_group()
    system.add_argument("--system", help="system prompt put before every question")
    system.add_argument("--system-file", type=Path, help="file holding the system prompt")
    parser.add_argument(
        "--gsm8k",
        action="store_true",
        help="keep only the final '#### N' answer, without thousands separators",
    )
    parser.add_argument(
        "--answer-key",
        default="final_answer",
        help="key of the answer inside reference_answer (default: final_answer; "
        "'' for the bare answer)",
    )
    parser.add_argument("--id-prefix", help="ids are <prefix>-00000, ... (default: output stem)")
    parser.add_argument(
        "--keep-field",
        action="append",
        default=[],
        metavar="NAME",
        help="copy this input field into each record (repeatable); extra "
        "fields reach the grader as metadata",
    )
    parser.add_argument(
        "--exclude-answer",
        metavar="REGEX",
        help="leave out the rows whose answer this regular expression matches (re.search), "
        "for answers the grader cannot read",
    )
    parser.add_argument("--offset", type=int, default=0, help="skip this many input rows")
    parser.add_argument("--limit", type=int, help="convert at most this many rows")
    return parser


def _argument_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the arguments (one line), or None."""
    if args.limit is not None and args.limit < 1:
        return "--limit must be at least 1"
    if args.offset < 0:
        return "--offset must not be negative"
    if args.exclude_answer is not None:
        try:
            re.compile(args.exclude_answer)
        except re.error as err:
            return f"--exclude-answer: not a regular expression: {err}"
    if args.output is not None and args.output.is_dir():
        return f"--output {args.output}: is a directory; name a .jsonl file"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; exit status 0 on success, 1 on bad input, 2 on bad arguments."""
    args = build_parser().parse_args(argv)
    problem = _argument_problem(args)
    if problem is not None:
        print(f"convert: {problem}", file=sys.stderr)
        return 2
    system = args.system
    if args.system_file is not None:
        try:
            system = args.system_file.read_text(encoding="utf-8").strip()
        except OSError as err:
            print(f"convert: --system-file {args.system_file}: {err.strerror}", file=sys.stderr)
            return 2
    prefix = args.id_prefix or (args.output.stem if args.output else "record")
    options = ConvertOptions(
        question_field=args.question_field,
        answer_field=args.answer_field,
        system=system,
        gsm8k=args.gsm8k,
        answer_key=args.answer_key,
        id_prefix=prefix,
        keep_fields=tuple(args.keep_field),
        offset=args.offset,
        limit=args.limit,
        exclude_answer=re.compile(args.exclude_answer) if args.exclude_answer else None,
    )
    excluded: list[int] = []
    try:
        count = convert_file(args.input, args.output, options, args.format, excluded)
    except ConvertError as err:
        for line in err.lines[:SHOWN_PROBLEMS]:
            print(f"convert: {line}", file=sys.stderr)
        if len(err.lines) > SHOWN_PROBLEMS:
            more = plural(len(err.lines) - SHOWN_PROBLEMS, "more bad row")
            print(f"convert: ... and {more}; nothing was written", file=sys.stderr)
        return 1
    except OSError as err:  # the output cannot be written: no permission, a file in the way
        blocked = f"{err.filename}: " if err.filename and Path(err.filename) != args.output else ""
        print(
            f"convert: --output {args.output}: cannot write it ({blocked}{err.strerror})",
            file=sys.stderr,
        )
        return 1
    if excluded:
        lines = ", ".join(map(str, excluded))
        print(
            f"convert: left out {plural(len(excluded), 'row')} whose answer matches"
            f" --exclude-answer ({args.input} line {lines})",
            file=sys.stderr,
        )
    if args.output is not None:
        print(f"convert: wrote {plural(count, 'record')} to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

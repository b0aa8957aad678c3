"""Degenerate rollouts (what a collapsing policy produces) and the budgets of each sample.

Answer extraction must be linear in the response: the tests check it structurally (what the
box finder returns, how often an answer is read), not by timing. A degenerate batch runs in a
child process that must answer every id (a batch that never ends, as on the old code, fails
the test at its generous limit instead of hanging the suite). The symbolic comparison's budget
must hold off the main thread, and the python grader's worker must have a memory limit.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.lambda_loader import LambdaContext
from tests.reward_support import GRADERS, check_contract, load_reward, reward_module, rollout

ROOT = Path(__file__).resolve().parents[2]
SIZE = 40_000

# Each shape's unit, repeated to SIZE characters.
SHAPES = {
    "boxes": "\\boxed{1} ",
    "digits": "1",
    "numbers": "7 ",
    "giant line": "So the answer is 1 or maybe 2, between 3 and 4; ",
    "many lines": "Step: 2+2=4, the answer is 4.\n",
    "hashes": "#### 1 ",
    "huge power": "$\\boxed{10^{10^{8}}}$ ",
    "unclosed math": "\\( 1 ",
    "nested boxes": "\\boxed{\\boxed{\\boxed{\\frac{1}{2}}}} ",
}


def degenerate(unit: str, size: int = SIZE) -> str:
    return (unit * (size // len(unit) + 1))[:size]


def test_every_box_is_read_in_linear_characters() -> None:
    """The old box finder gave every box the rest of its line: 4,000 boxes on one line read
    4,000 times 40 KB. Now no character is in two boxes' contents and the look after a box
    stops at the next one."""
    answers = reward_module("grading.answers")
    for unit in ("\\boxed{1} ", "\\boxed{1} or 2 ", "\\fbox{\\frac{1}{2}}", "\\boxed{\\boxed{1}}"):
        for size in (4_000, SIZE):
            text = degenerate(unit, size)
            spans = answers.boxed(text)
            assert spans, unit
            assert sum(len(content) + len(after) for content, after in spans) <= 2 * size


def test_nested_braces_are_matched_in_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = reward_module("grading.answers")
    passes: list[int] = []
    closing = answers._closing_braces

    def counted(text: str) -> Any:
        passes.append(1)
        return closing(text)

    monkeypatch.setattr(answers, "_closing_braces", counted)
    # nesting too deep for the regular expression: the brace map, built once
    text = degenerate("\\boxed{{{{1}}}} ", SIZE)
    assert [content for content, _ in answers.boxed(text)][:1] == ["{{{1}}}"]
    assert passes == [1]
    # a box opened and never closed, then a real one: the real one is found
    unclosed = "\\boxed{" + "{" * 5000 + "1" + " \\boxed{7}"
    assert [content for content, _ in answers.boxed(unclosed)] == ["7"]


def test_repeated_answers_do_not_pay(monkeypatch: pytest.MonkeyPatch) -> None:
    """A degenerate repetition of the right answer is graded in its budget and does not pay:
    hundreds of repeated numbers are a spray."""
    handler = load_reward(monkeypatch, {"type": "math_answer", "name": "latex"}).handler
    event = [
        rollout("right", degenerate("\\boxed{\\frac{1}{2}} "), "\\frac{1}{2}"),
        rollout("wrong", degenerate("The answer is $\\sqrt{2}$.\n"), "\\frac{1}{2}"),
    ]
    outputs = handler(event, None)
    check_contract(event, outputs)
    assert [output["aggregate_reward_score"] for output in outputs] == [0.0, 0.0]


def test_long_responses_are_graded_on_their_end() -> None:
    answers = reward_module("grading.answers")
    head = "The answer is 5.\n" + degenerate("1 2 3\n", 50_000)
    text = head + "\nSo the answer is 42."
    part = answers.answer_part(text)
    assert len(part) <= answers.MAX_ANSWER_CHARS
    assert part.endswith("So the answer is 42.")
    assert text[-len(part) - 1].isspace()  # cut after a blank: no number is split
    assert answers.answer_part("short") == "short"


_CHILD = textwrap.dedent(
    """
    import contextlib, io, json, os, sys, threading
    sys.path.insert(0, {root!r})
    from tests.lambda_loader import LambdaContext, load_handler
    os.environ["GRADER_CONFIG"] = {config!r}
    handler = load_handler("reward", fresh=True).handler
    event = json.loads(sys.stdin.read())
    outputs = []
    def grade():
        with contextlib.redirect_stdout(io.StringIO()):
            outputs.extend(handler(event, LambdaContext()))
    if {thread!r}:  # as a caller's thread pool would: SIGALRM cannot reach this thread
        worker = threading.Thread(target=grade)
        worker.start()
        worker.join()
    else:
        grade()
    print(json.dumps(outputs))
    """
)
# Far above what these batches take (about a second in all, with the child's start); the old
# code took minutes (2.5 s for each 40 KB rollout of repeated boxes alone), and a huge power
# graded off the main thread held the interpreter for more than 100 s.
_LIMIT_SECONDS = 60


def graded_in_child(grader: str, event: list[dict[str, Any]], *, thread: bool = False) -> Any:
    """The handler's answer to ``event``, graded in a child process (on a thread other than
    its main one with ``thread``) that must finish within :data:`_LIMIT_SECONDS`."""
    code = _CHILD.format(root=str(ROOT), config=grader, thread=thread)
    done = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(event),
        capture_output=True,
        text=True,
        timeout=_LIMIT_SECONDS,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])  # after the log lines


@pytest.mark.parametrize(
    ("grader", "references"),
    [
        (str(GRADERS / "gsm8k.json"), ["1", "4", "72"]),
        (json.dumps({"type": "math_answer", "name": "latex"}), ["\\frac{1}{2}", "(0,1]", "x=2"]),
    ],
    ids=["gsm8k", "latex"],
)
def test_a_degenerate_batch_answers_every_id(grader: str, references: list[str]) -> None:
    event = [
        rollout(f"{shape}-{index}", degenerate(unit), references[index % len(references)])
        for shape, unit in SHAPES.items()
        for index in range(64)  # a batch of each shape, as Bedrock sends them
    ]
    outputs = graded_in_child(grader, event)
    check_contract(event, outputs)
    by_id = {output["id"]: output for output in outputs}
    # the unreadable power is over budget: its fallback score, with the reason flagged
    power = by_id["huge power-0"]
    assert power["aggregate_reward_score"] == 0.0
    assert "grader_error" in {metric["name"] for metric in power["metrics_list"]}
    # a repeated answer sprays numbers: no reward for collapsing into repetition
    assert by_id["many lines-1"]["aggregate_reward_score"] == 0.0


def _in_thread(run: Any, seconds: float) -> Any:
    """``run()`` on a thread that is not the main one; its result, or a failure when it does
    not return within ``seconds`` (the thread is then left behind, a daemon)."""
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(run()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s off the main thread"
    return result[0]


def test_a_huge_power_is_bounded_on_any_thread() -> None:
    """From a worker thread, 10^{10^8} ran for more than 100 s (sympy computed it exactly,
    holding the interpreter); such a power is now compared in a child process killed at the
    budget, on any thread."""
    latex = json.dumps({"type": "math_answer", "name": "latex"})
    event = [
        rollout("power", "$\\boxed{10^{10^{8}}}$", "10^{10^{8}}+1"),
        rollout("plain", "$\\boxed{\\frac{1}{2}}$", "0.5"),
    ]
    outputs = graded_in_child(latex, event, thread=True)
    check_contract(event, outputs)
    assert [output["aggregate_reward_score"] for output in outputs] == [0.0, 1.0]
    assert "grader_error" in {metric["name"] for metric in outputs[0]["metrics_list"]}
    engine = reward_module("grading.mathverify")
    for text in ("10^{10^8}", "(10^{5000})^{5000}", "2**(2**40)", "9^{9^{9}}", "10^{100000000}"):
        assert engine.risky(text), text
    for text in (
        "2^{10}",
        "2^{1000}",
        "x^2+y^2",
        "(x+1)^{20}",
        "5!",
        "\\binom{10}{5}",
        "e^{i\\pi}",
    ):
        assert not engine.risky(text), text


def test_the_comparison_budget_holds_off_the_main_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGALRM reaches only the main thread: elsewhere a comparison that never ends runs in a
    child process that is killed at the budget."""
    handler = load_reward(
        monkeypatch, {"type": "math_answer", "name": "latex", "time_budget": 0.3}
    ).handler
    library = reward_module("grading.mathverify").library()
    verify = library.verify

    def slow(gold: Any, answer: Any, **options: Any) -> Any:
        if "x" not in str(answer):
            return verify(gold, answer, **options)
        while True:
            time.sleep(0.01)

    monkeypatch.setattr(library, "verify", slow)
    event = [
        rollout("slow", "$\\boxed{(x+1)^2}$", "x^2+2x+1"),
        rollout("fast", "$\\boxed{\\frac{1}{2}}$", "0.5"),
    ]
    engine = reward_module("grading.mathverify")
    for item in event:  # parsed once before (the children inherit it): the budget is the wait's
        engine.parse(item["messages"][-1]["content"])
    started = time.monotonic()
    outputs = _in_thread(lambda: handler(event, None), 30)
    assert time.monotonic() - started < 10
    assert [output["aggregate_reward_score"] for output in outputs] == [0.0, 1.0]
    assert "grader_error" in {metric["name"] for metric in outputs[0]["metrics_list"]}


def test_an_isolated_call_has_a_deadline_and_a_memory_limit() -> None:
    isolation = reward_module("grading.isolation")
    assert isolation.run_isolated(lambda: 6 * 7, 10, 64 << 20) == 42
    started = time.monotonic()
    with pytest.raises(isolation.IsolatedTimeoutError):
        isolation.run_isolated(lambda: time.sleep(30), 0.2, 64 << 20)
    assert time.monotonic() - started < 10
    with pytest.raises(isolation.IsolatedRaisedError, match="MemoryError"):
        isolation.run_isolated(lambda: len(bytearray(8 << 30)), 10, 64 << 20)
    assert bytearray(1 << 20)  # this process is unaffected


HOG = """
def grade(sample, item):
    if sample["output_text"] == "hog":
        return float(len(bytearray(8 << 30)))
    return 1.0
"""


def test_the_python_grader_worker_has_a_memory_and_cpu_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = load_reward(monkeypatch, {"type": "python", "name": "hog", "source": HOG})
    event = [rollout(f"s{i}", text, "x") for i, text in enumerate(["ok", "hog", "ok"])]
    outputs = module.handler(event, LambdaContext())
    check_contract(event, outputs)
    assert [output["aggregate_reward_score"] for output in outputs] == [1.0, 0.0, 1.0]
    assert "grader_error" in {metric["name"] for metric in outputs[1]["metrics_list"]}
    worker = module.DEFINITION.grader.worker
    limits = Path(f"/proc/{worker.pid}/limits").read_text(encoding="ascii")
    rows = {line[:26].strip(): line[26:].split() for line in limits.splitlines()[1:]}
    assert rows["Max address space"][0] != "unlimited"
    assert rows["Max cpu time"][0] != "unlimited"
    worker.stop()


def test_the_budget_holds_when_its_first_signal_is_swallowed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An exception raised in a garbage-collector callback or a ``__del__`` is printed and
    dropped by Python (seen in the suite: the timer fired inside hypothesis's GC callback);
    the timer fires again until the comparison ends."""
    handler = load_reward(
        monkeypatch, {"type": "math_answer", "name": "latex", "time_budget": 0.1}
    ).handler
    engine = reward_module("grading.mathverify")
    library = engine.library()
    verify = library.verify
    swallowed: list[str] = []

    def slow(gold: Any, answer: Any, **options: Any) -> Any:
        if "x" not in str(answer):
            return verify(gold, answer, **options)
        begin = time.monotonic()
        while time.monotonic() - begin < 5:  # without a second signal: 5 s, then a pass
            try:
                time.sleep(0.001)
            except BaseException as err:  # the first signal only, as a GC callback loses it
                if swallowed:
                    raise
                swallowed.append(type(err).__name__)
        return True

    monkeypatch.setattr(library, "verify", slow)
    event = [
        rollout("slow", "$\\boxed{(x+1)^2}$", "x^2+2x+1"),
        rollout("fast", "$\\boxed{\\frac{1}{2}}$", "0.5"),
    ]
    for item in event:
        engine.parse(item["messages"][-1]["content"])
    started = time.monotonic()
    outputs = handler(event, None)
    assert time.monotonic() - started < 3
    assert swallowed == ["_OutOfTime"]
    assert [output["aggregate_reward_score"] for output in outputs] == [0.0, 1.0]
    assert "grader_error" in {metric["name"] for metric in outputs[0]["metrics_list"]}

"""`dialtone dialog validate|test|graph` as an operator runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from dialtone.conversation_runtime.dialog_testing import run_test_file

EXAMPLES = Path(__file__).resolve().parents[2] / "services" / "conversation_runtime" / "examples"
DIALOGS = [EXAMPLES / f"{name}.yaml"
           for name in ("order_status", "appointment_booking", "dtmf_menu", "pharmacy_refill")]


def dialtone(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dialtone", "dialog", *args], capture_output=True, text=True,
                          timeout=60)


def test_examples_pass_their_own_tests_with_full_coverage() -> None:
    """The shipped dialogs pass their test files; coverage is reported and meets 90 %."""
    tests = [str(p.with_suffix(".test.yaml")) for p in DIALOGS]
    result = dialtone("test", *tests, "--min-coverage", "90")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAIL" not in result.stdout
    assert result.stdout.count("coverage ") == len(DIALOGS)


def test_failing_case_and_low_coverage_exit_1(tmp_path: Path) -> None:
    """A case whose expectation is wrong fails with its file:line; too little coverage fails too."""
    test_file = tmp_path / "t.test.yaml"
    test_file.write_text(f"dialog: {EXAMPLES / 'dtmf_menu.yaml'}\ncases:\n  - name: wrong\n    steps:\n"
                         "      - dtmf: '1'\n      - expect: {state: main_menu}\n")
    result = dialtone("test", str(test_file))
    assert result.returncode == 1
    assert f"{test_file}:6:9: expected state 'main_menu', the dialog is in 'sales'" in result.stdout
    ok_file = tmp_path / "ok.test.yaml"
    ok_file.write_text(f"dialog: {EXAMPLES / 'dtmf_menu.yaml'}\ncases:\n  - steps: [{{dtmf: '1'}}]\n")
    assert dialtone("test", str(ok_file)).returncode == 0
    low = dialtone("test", str(ok_file), "--min-coverage", "80")
    assert low.returncode == 1 and "below --min-coverage 80%" in low.stdout


def test_validate_prints_file_line_col_and_exits_1(tmp_path: Path) -> None:
    """validate: 0 for good files; 1 and `file:line:col: message` for every error of a bad one."""
    assert dialtone("validate", *map(str, DIALOGS)).returncode == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(DIALOGS[2].read_text().replace("target: sales}", "target: salez}"))
    result = dialtone("validate", str(DIALOGS[0]), str(bad))
    assert result.returncode == 1
    line, text = next((i, text) for i, text in enumerate(bad.read_text().splitlines(), 1) if "salez" in text)
    col = text.index("salez") + 1
    assert f"{bad}:{line}:{col}: target 'salez' does not exist (did you mean 'sales'?)" in result.stdout


def test_graph_mermaid_and_dot() -> None:
    """graph draws the compiled table: every transition is an edge."""
    mermaid = dialtone("graph", str(DIALOGS[2]))
    assert mermaid.returncode == 0
    assert mermaid.stdout.startswith("stateDiagram-v2\n    [*] --> main_menu\n")
    assert 'main_menu --> sales: filled [value == "sales"]' in mermaid.stdout
    dot = dialtone("graph", str(DIALOGS[2]), "--format", "dot")
    assert dot.stdout.startswith('digraph "dtmf_menu" {') and '"support_menu" -> "main_menu"' in dot.stdout


def test_graph_shows_actions_short_labels_true_finals_and_a_handler_node_no_state_can_take(tmp_path: Path) -> None:
    """Issue 14's graph findings, drawn by Graphviz itself: which state calls the backend, a long
    condition shortened, a state with a way out not drawn final, a real state named any_state kept
    apart from the handlers' node."""
    dialog = tmp_path / "g.yaml"
    dialog.write_text("""\
dialog:
  name: g
  initial: any_state
  handlers:
    - event: dtmf
      condition: 'digit == "0"'
      target: agent
  states:
    any_state:
      on_enter: [{say: "Hello."}, {call: {service: orders, method: get, payload: {}}}]
      transitions:
        - event: backend.result
          condition: 'result.ok && result.body.status == "shipped" && result.body.eta != ""'
          target: agent
        - event: backend.result
          target: agent
    agent:
      on_enter: [{say: "Connecting."}, {transfer: "sip:agent@127.0.0.1"}]
      transitions:
        - event: transfer.result
          target: any_state
""")
    dot = dialtone("graph", str(dialog), "--format", "dot").stdout
    assert '"any_state" [shape=box, label="any_state\\nsay\\ncall orders.get"];' in dot
    assert '"agent" [shape=box' in dot                      # it has a way out: not a final circle
    assert '"any state" -> "agent"' in dot and '"any state" [shape=note' in dot
    assert "[result.ok && result.body.status…]" in dot and "eta" not in dot
    rendered = subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True, text=True, timeout=60)
    assert rendered.returncode == 0, rendered.stderr
    svg = rendered.stdout
    assert svg.count('class="node"') == 4 and svg.count('class="edge"') == 5   # start, 2 states, handlers
    mermaid = dialtone("graph", str(dialog)).stdout
    assert "state \"any state (handlers)\" as any_state_\n" in mermaid and "any_state_ --> agent" in mermaid


def test_test_runner_reports_uncovered_transitions(tmp_path: Path) -> None:
    """Coverage counts entered states and taken transitions, and names what was never taken."""
    full = run_test_file(DIALOGS[2].with_suffix(".test.yaml"))
    assert all(case.passed for case in full.cases)
    assert full.coverage.transition_percent == 100.0 and full.coverage.state_percent == 100.0
    one = tmp_path / "one.test.yaml"
    one.write_text(f"dialog: {DIALOGS[2]}\ncases:\n  - steps: [{{dtmf: '1'}}]\n")
    partial = run_test_file(one)
    report = partial.coverage.report()
    assert report[0] == "coverage dtmf_menu: states 2/5 (40%), transitions 1/7 (14%)"
    assert "  state never entered: support_menu" in report
    assert any(line.startswith("  transition never taken: main_menu --filled--> support_menu") for line in report)


def test_test_file_with_a_bad_dialog_or_bad_backend_fails(tmp_path: Path) -> None:
    """A test file whose dialog is wrong prints the dialog's errors; an unknown error kind fails its case."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("dialog:\n  name: x\n  initial: y\n  states: {x: {on_enter: [{hangup: z}]}}\n")
    test_file = tmp_path / "bad.test.yaml"
    test_file.write_text("dialog: bad.yaml\ncases: []\n")
    result = dialtone("test", str(test_file))
    assert result.returncode == 1 and f"{bad}:3:12: initial state 'y' does not exist" in result.stdout
    kind = tmp_path / "kind.test.yaml"
    kind.write_text(f"dialog: {DIALOGS[0]}\nbackends: {{orders.get_status: {{error: exploded}}}}\ncases:\n"
                    "  - steps: [{speech: '12345'}]\n")
    result = dialtone("test", str(kind))
    assert result.returncode == 1 and "unknown error kind 'exploded'" in result.stdout

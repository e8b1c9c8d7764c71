"""``dialtone dialog graph``: the compiled transition table drawn as Mermaid or DOT."""

from __future__ import annotations

from dialtone.conversation_runtime.core import model as m


def _edge_label(transition: m.Transition) -> str:
    label = transition.event
    if transition.after is not None:
        label += f" {transition.after:g}s"
    if transition.count is not None:
        label += f" #{transition.count}"
    if transition.condition is not None:
        label += f" [{transition.condition.source}]"
    return label


def _edges(dialog: m.Dialog) -> list[tuple[str, str, str]]:
    edges = []
    for state in dialog.states.values():
        for transition in state.transitions:
            edges.append((state.name, transition.target or state.name, _edge_label(transition)))
    for transition in dialog.handlers:
        if transition.target:
            edges.append(("any_state", transition.target, _edge_label(transition)))
    return edges


def to_mermaid(dialog: m.Dialog) -> str:
    lines = ["stateDiagram-v2", f"    [*] --> {dialog.initial}"]
    for source, target, label in _edges(dialog):
        lines.append(f"    {source} --> {target}: {label.replace(':', '#colon;')}")
    for state in dialog.states.values():
        if state.final:
            lines.append(f"    {state.name} --> [*]")
    return "\n".join(lines) + "\n"


def to_dot(dialog: m.Dialog) -> str:
    lines = [f'digraph "{dialog.name}" {{', "    rankdir=LR;", '    "__start" [shape=point];',
             f'    "__start" -> "{dialog.initial}";']
    for state in dialog.states.values():
        shape = "doublecircle" if state.final else "box"
        lines.append(f'    "{state.name}" [shape={shape}];')
    for source, target, label in _edges(dialog):
        escaped = label.replace("\\", "\\\\").replace('"', '\\"')
        lines.append(f'    "{source}" -> "{target}" [label="{escaped}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"

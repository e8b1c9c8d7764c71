"""``dialtone dialog graph``: the compiled transition table drawn as Mermaid or DOT.

Each state shows what it does (say, play, call service.method, transfer, hangup, collect slot);
edges carry the event and a shortened condition; a state is drawn final only when the call ends
there and nothing leads out of it; the dialog-wide handlers start from one node whose name no state
can have.
"""

from __future__ import annotations

from dialtone.conversation_runtime.core import model as m

MAX_CONDITION_CHARS = 32


def _short(text: str, limit: int = MAX_CONDITION_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _edge_label(transition: m.Transition) -> str:
    label = transition.event
    if transition.intent is not None:
        label += f" {transition.intent}"
    if transition.after is not None:
        label += f" {transition.after:g}s"
    if transition.count is not None:
        label += f" #{transition.count}"
    if transition.condition is not None:
        label += f" [{_short(transition.condition.source)}]"
    return label


def _actions(state: m.State) -> list[str]:
    """What the state does on entry, in words short enough for a node."""
    done: list[str] = []
    says = 0
    for action in state.on_enter:
        if isinstance(action, m.Say):
            says += 1
        elif isinstance(action, m.Play):
            done.append("play")
        elif isinstance(action, m.Call):
            done.append(f"call {action.service}.{action.method}")
        elif isinstance(action, m.Transfer):
            done.append("transfer")
        elif isinstance(action, m.Hangup):
            done.append(f"hangup {action.reason}")
    if says:
        done.insert(0, "say" if says == 1 else f"say ×{says}")
    if state.collect is not None:
        done.append(f"collect {state.collect.slot} ({state.collect.entity})")
    if state.run is not None:
        done.append(f"run {state.run.flow}")
    return done


# State names are letters, digits and _: a name with a space is one no state can take (DOT).
HANDLERS_NODE = "any state"


def _ends_here(state: m.State) -> bool:
    return state.final and not state.transitions


def _edges(dialog: m.Dialog) -> list[tuple[str, str, str]]:
    edges = []
    for state in dialog.states.values():
        if state.run is not None:
            edges.append((state.name, state.run.initial, f"run {state.run.flow}"))
        for transition in state.transitions:
            if transition.returns is not None:
                edges.append((state.name, state.caller, f"{_edge_label(transition)} return"))
                continue
            target = state.name if transition.target in (None, m.CURRENT_STATE) else transition.target
            edges.append((state.name, target, _edge_label(transition)))
    for transition in dialog.handlers:
        if transition.target == m.CURRENT_STATE:
            edges.append((HANDLERS_NODE, HANDLERS_NODE, _edge_label(transition) + " (the current state again)"))
        elif transition.target:
            edges.append((HANDLERS_NODE, transition.target, _edge_label(transition)))
    return edges


def _mid(name: str) -> str:
    return name.replace(".", "__")   # a flow's copy of a state is named caller.state; Mermaid ids take no dot


def to_mermaid(dialog: m.Dialog) -> str:
    lines = ["stateDiagram-v2", f"    [*] --> {_mid(dialog.initial)}"]
    for state in dialog.states.values():
        actions = _actions(state)
        if actions:
            lines.append(f"    {_mid(state.name)}: {state.name}<br/>{', '.join(actions).replace(':', '#colon;')}")
    # a Mermaid id cannot hold a space: the handlers' node takes an id no state has, and a readable name
    node = "any_state"
    while node in dialog.states:
        node += "_"
    if dialog.handlers:
        lines.append(f"    state \"any state (handlers)\" as {node}")
    for source, target, label in _edges(dialog):
        source_id = _mid(source) if source in dialog.states else node
        target = _mid(target) if target in dialog.states else node
        lines.append(f"    {source_id} --> {target}: {label.replace(':', '#colon;')}")
    for state in dialog.states.values():
        if _ends_here(state):
            lines.append(f"    {_mid(state.name)} --> [*]")
    return "\n".join(lines) + "\n"


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def to_dot(dialog: m.Dialog) -> str:
    lines = [f'digraph "{_dot_text(dialog.name)}" {{', "    rankdir=LR;", '    "__start" [shape=point];',
             f'    "__start" -> "{dialog.initial}";']
    for state in dialog.states.values():
        shape = "doublecircle" if _ends_here(state) else "box"
        label = "\\n".join([state.name, *(_dot_text(a) for a in _actions(state))])
        lines.append(f'    "{state.name}" [shape={shape}, label="{label}"];')
    if dialog.handlers:
        lines.append(f'    "{HANDLERS_NODE}" [shape=note, style=dashed];')
    for source, target, label in _edges(dialog):
        lines.append(f'    "{source}" -> "{target}" [label="{_dot_text(label)}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"

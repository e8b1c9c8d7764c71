"""Whole-dialog checks: targets exist, states are reachable and have a way out, backend errors are handled."""

from __future__ import annotations

import re

from dialtone.conversation_runtime.core import model as m
from dialtone.conversation_runtime.core.located import Loc
from dialtone.conversation_runtime.core.reporter import Reporter, did_you_mean

# A backend.result condition that lets errors through (see docs/dialogs.md, "Backend calls").
HANDLES_ERRORS_RE = re.compile(r"result\.error|!\s*\(?\s*result\.ok|result\.ok\s*(==\s*false|!=\s*true)")


class GraphChecks(Reporter):
    def check_graph(self, dialog: m.Dialog, state_locs: dict[str, Loc], body: dict[str, Loc]) -> None:
        transition_locs = _transition_locs(body, state_locs)
        for transition in dialog.all_transitions():
            self.state = None if transition.origin == "*" else transition.origin
            if transition.target is not None and transition.target not in dialog.states \
                    and transition.target != m.CURRENT_STATE:
                loc = transition_locs.get((transition.origin, transition.line))
                self.error(loc or (transition.line, 1), "unknown_target",
                           f"target '{transition.target}' does not exist"
                           f"{did_you_mean(transition.target, dialog.states)}; states: "
                           f"{', '.join(sorted(dialog.states))}")
        reachable = {dialog.initial}
        frontier = [dialog.initial]
        global_targets = {t.target for t in dialog.handlers if t.target in dialog.states}
        reachable |= global_targets
        frontier += list(global_targets)
        while frontier:
            state = dialog.states.get(frontier.pop())
            if state is None:
                continue
            if state.run is not None and state.run.initial not in reachable:
                reachable.add(state.run.initial)
                frontier.append(state.run.initial)
            for transition in state.transitions:
                if transition.target in dialog.states and transition.target not in reachable:
                    reachable.add(transition.target)
                    frontier.append(transition.target)
        for name, state in dialog.states.items():
            self.state = name
            if name not in reachable:
                self.error(state_locs[name], "unreachable_state",
                           f"state '{name}' is unreachable: no transition leads to it", True)
            exits = [t for t in state.transitions if t.event != "hangup"]
            if not state.final and not exits:
                self.error(state_locs[name], "dead_end",
                           f"state '{name}' has no way out: add transitions, or end its on_enter with "
                           "hangup or transfer", True)
            self.check_calls(dialog, state, state.on_enter, state)
            self.warn_unreachable_transitions(state)
            self.warn_actions_after_the_end(state.on_enter, state.line)
            for transition in state.transitions:
                self.warn_actions_after_the_end(transition.actions, transition.line)
            for transition in state.transitions:
                receiver = dialog.states.get(transition.target or name)
                if receiver is not None:
                    self.check_calls(dialog, state, transition.actions, receiver)
        self.state = None
        for transition in dialog.handlers:
            for receiver_name in [transition.target] if transition.target else list(dialog.states):
                receiver = dialog.states.get(receiver_name or "")
                if receiver is not None:
                    self.check_calls(dialog, receiver, transition.actions, receiver)
        self.state = None

    def warn_unreachable_transitions(self, state: m.State) -> None:
        """Transitions that can never be taken: input the state's mode ignores, or one behind an
        earlier transition for the same event that has no condition."""
        ignored = {"dtmf": {"speech", "intent"}, "speech": {"dtmf", "digits"}}.get(state.input.mode, set())
        catch_all: dict[tuple[object, ...], m.Transition] = {}
        for transition in state.transitions:
            if transition.event in ignored:
                self.warn(transition.line, 1, "ignored_input",
                          f"this '{transition.event}' transition is never taken: the state's input mode is "
                          f"{state.input.mode}")
            slot = (transition.event, transition.intent, transition.after, transition.count)
            earlier = catch_all.get(slot)
            if earlier is not None:
                self.warn(transition.line, 1, "shadowed_transition",
                          f"this '{transition.event}' transition is never taken: the one on line {earlier.line} "
                          "has no condition and is tried first")
            elif transition.condition is None:
                catch_all[slot] = transition

    def warn_actions_after_the_end(self, actions: tuple[m.Action, ...], line: int) -> None:
        for index, action in enumerate(actions[:-1]):
            if isinstance(action, m.Hangup):
                after = type(actions[index + 1]).__name__.lower()
                self.warn(line, 1, "action_after_end",
                          f"an action ({after}) after hangup never runs: the call has ended")
                return

    def check_calls(self, dialog: m.Dialog, state: m.State, actions: tuple[m.Action, ...],
                    receiver: m.State) -> None:
        for action in actions:
            if not isinstance(action, m.Call):
                continue
            handlers = [t for level in dialog.candidates(receiver, "backend.result") for t in level]
            if not any(t.condition is None or HANDLES_ERRORS_RE.search(t.condition.source) for t in handlers):
                self.state = state.name
                self.error((action.line, action.col), "unhandled_backend_error",
                           f"call {action.service}.{action.method}: its errors are handled nowhere; state "
                           f"'{receiver.name}' needs a backend.result transition without a condition or "
                           "with one on result.error / !result.ok")


def _transition_locs(body: dict[str, Loc], state_locs: dict[str, Loc]) -> dict[tuple[str, int], Loc]:
    """(origin, line) of each transition -> the location of its target (for unknown_target errors)."""
    out: dict[tuple[str, int], Loc] = {}

    def add(origin: str, transitions: Loc | None) -> None:
        if transitions is None or not isinstance(transitions.value, list):
            return
        for item in transitions.value:
            if isinstance(item.value, dict) and "target" in item.value:
                out[(origin, item.line)] = item.value["target"]

    add("*", body.get("handlers"))
    for name, loc in state_locs.items():
        if isinstance(loc.value, dict):
            add(name, loc.value.get("transitions"))
    return out

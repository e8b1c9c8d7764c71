"""Actions in a dialog (say, play, call, set, transfer, hangup), dispatched by type through a registry."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from dialtone.conversation_runtime.core import model as m
from dialtone.conversation_runtime.core.located import Loc
from dialtone.conversation_runtime.core.reporter import NAME_RE, Reporter, did_you_mean, kind_of


class ActionParsers(Reporter):
    def load_barge_in(self, loc: Loc) -> m.BargeIn | None:
        value = loc.value
        if value is True:  # YAML 1.1 reads a bare `on` as true and `off` as false
            value = "on"
        elif value is False:
            value = "off"
        if isinstance(value, str) and value in ("on", "off", "dtmf_only"):
            return m.BargeIn(value)
        if isinstance(value, dict) and set(value) == {"after_words"}:
            words = value["after_words"].value
            if isinstance(words, int) and not isinstance(words, bool) and words >= 1:
                return m.BargeIn("after_words", words)
        self.error(loc, "bad_value", "barge_in must be on, off, dtmf_only or {after_words: N} with N >= 1")
        return None

    def load_actions(self, loc: Loc | None, names: set[str], what: str) -> tuple[m.Action, ...]:
        if loc is None:
            return ()
        if not isinstance(loc.value, list):
            self.error(loc, "wrong_type", f"{what} must be a list of actions, got {kind_of(loc.value)}")
            return ()
        out = []
        for item in loc.value:
            if not isinstance(item.value, dict) or len(item.value) != 1:
                self.error(item, "wrong_type",
                           f"an action is a mapping with one key ({', '.join(sorted(ACTIONS))}), "
                           f"got {kind_of(item.value)}")
                continue
            ((kind, body),) = item.value.items()
            parse = ACTIONS.get(kind)
            if parse is None:
                hint = did_you_mean(kind, ACTIONS)
                self.error(body, "unknown_action",
                           f"unknown action '{kind}'{hint}; actions: {', '.join(sorted(ACTIONS))}", True)
                continue
            action = parse(self, body, names)
            if action is not None:
                out.append(action)
        return tuple(out)

    def parse_say(self, loc: Loc, names: set[str]) -> m.Say | None:
        if isinstance(loc.value, str):
            text = self.template(loc, "say", names)
            return m.Say(text) if text else None
        fields = self.mapping(loc, "say", {"text", "voice", "barge_in"}, ("text",))
        text = self.template(fields["text"], "say text", names) if "text" in fields else None
        voice = self.string(fields["voice"], "voice") if "voice" in fields else ""
        barge_in = self.load_barge_in(fields["barge_in"]) if "barge_in" in fields else None
        return m.Say(text, voice or "", barge_in) if text else None

    def parse_play(self, loc: Loc, names: set[str]) -> m.Play | None:
        if isinstance(loc.value, str):
            return m.Play(loc.value)
        fields = self.mapping(loc, "play", {"file", "barge_in"}, ("file",))
        file = self.string(fields["file"], "play file") if "file" in fields else None
        barge_in = self.load_barge_in(fields["barge_in"]) if "barge_in" in fields else None
        return m.Play(file, barge_in) if file else None

    def parse_call(self, loc: Loc, names: set[str]) -> m.Call | None:
        fields = self.mapping(loc, "call", {"service", "method", "payload", "timeout"}, ("service", "method"))
        service = self.string(fields["service"], "call service") if "service" in fields else None
        method = self.string(fields["method"], "call method") if "method" in fields else None
        payload: Any = {}
        if "payload" in fields:
            if isinstance(fields["payload"].value, dict):
                payload = self.payload(fields["payload"], names)
            else:
                self.error(fields["payload"], "wrong_type", "call payload must be a mapping")
        timeout = self.duration(fields["timeout"], "call timeout") if "timeout" in fields else None
        if not (service and method):
            return None
        return m.Call(service, method, payload, int((timeout or 0) * 1000), line=loc.key_line or loc.line,
                      col=loc.key_col or loc.col)

    def payload(self, loc: Loc, names: set[str]) -> Any:
        if isinstance(loc.value, dict):
            return {k: self.payload(v, names) for k, v in loc.value.items()}
        if isinstance(loc.value, list):
            return [self.payload(v, names) for v in loc.value]
        if isinstance(loc.value, str):
            return self.template(loc, "payload value", names)
        return loc.value

    def parse_set(self, loc: Loc, names: set[str]) -> m.SetVariables | None:
        entries = self.mapping(loc, "set", set(loc.value) if isinstance(loc.value, dict) else set())
        out = []
        for key, value in entries.items():
            if key in m.RESERVED_NAMES or not NAME_RE.match(key):
                self.error(value, "reserved_name", f"cannot set '{key}': not a variable name", True)
                continue
            expr = self.expression(value, f"set {key}", names)
            if expr is not None:
                out.append((key, expr))
        return m.SetVariables(tuple(out))

    def parse_transfer(self, loc: Loc, names: set[str]) -> m.Transfer | None:
        if isinstance(loc.value, dict):
            fields = self.mapping(loc, "transfer", {"to"}, ("to",))
            loc = fields.get("to") or loc
            if "to" not in fields:
                return None
        target = self.template(loc, "transfer target", names)
        if target and not target.names and not re.match(r"^(sips?|tel):", target.source):
            self.error(loc, "bad_value", f"transfer target {target.source!r} must be a sip:, sips: or tel: URI")
        return m.Transfer(target) if target else None

    def parse_hangup(self, loc: Loc, names: set[str]) -> m.Hangup | None:
        if loc.value is None:
            return m.Hangup()
        if isinstance(loc.value, str):
            return m.Hangup(loc.value)
        fields = self.mapping(loc, "hangup", {"reason"})
        reason = self.string(fields["reason"], "hangup reason") if "reason" in fields else "dialog"
        return m.Hangup(reason or "dialog")


ACTIONS: dict[str, Callable[[ActionParsers, Loc, set[str]], Any]] = {
    "say": ActionParsers.parse_say,
    "play": ActionParsers.parse_play,
    "call": ActionParsers.parse_call,
    "set": ActionParsers.parse_set,
    "transfer": ActionParsers.parse_transfer,
    "hangup": ActionParsers.parse_hangup,
}

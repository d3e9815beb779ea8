"""Personal data and secrets replaced by placeholders before a remote model sees a text,
and put back in what the model writes::

    redactor = Redactor()                      # or Redactor(["email", "secret"])
    prompt = redactor.redact("Mail ann@example.org or call +44 20 7946 0958")
    # 'Mail <EMAIL_1> or call <PHONE_1>'
    redactor.restore("Write to <EMAIL_1>.")    # 'Write to ann@example.org.'
    restorer = redactor.restorer()             # for a streamed answer
    out = restorer.feed("Write to <EMA") + restorer.feed("IL_1>.") + restorer.flush()
    redactor.counts                            # {'email': 1, 'phone': 1, ...}

One ``Redactor`` serves one answer: the same value gets the same placeholder in every
text it redacts (the question, each passage), so the model can refer to it.

Placeholders are ``<KIND_n>``; ``restore`` also accepts their HTML-escaped form
``&lt;KIND_n&gt;``, which is what a model sees when a redacted passage is escaped into
its prompt. Text that already holds something shaped like a placeholder keeps it: that
string is itself replaced by a fresh placeholder of its kind which restores to the
original string, so a model that quotes it gives back the text it read, never a value
redacted elsewhere. Such strings are not counted in ``counts``.

When matches overlap, the longest wins; between equally long ones, the most specific
kind (secret, IBAN, national id, card, e-mail, phone). Every finder is linear in the
length of the text (see ``pii_patterns``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ragline.answer.pii_patterns import FINDERS
from ragline.errors import ConfigurationError

KINDS: tuple[str, ...] = ("email", "phone", "card", "iban", "national_id", "secret")

_ORDER = ("secret", "iban", "national_id", "card", "email", "phone")
_NAMES = tuple(kind.upper() for kind in KINDS)
_PLACEHOLDER = re.compile(rf"(?:<|&lt;)({'|'.join(_NAMES)})_([0-9]{{1,9}})(?:>|&gt;)")
_FORMS = (("<", ">"), ("&lt;", "&gt;"))
_LONGEST = max(len(name) for name in _NAMES) + 1 + 9 + 8
_LITERAL = ""


class Redactor:
    """Replaces the chosen kinds of values by placeholders and restores them."""

    def __init__(self, kinds: Iterable[str] = KINDS) -> None:
        chosen = tuple(dict.fromkeys(kinds))
        unknown = [kind for kind in chosen if kind not in KINDS]
        if unknown:
            raise ConfigurationError(
                f"unknown kind of personal data {', '.join(map(repr, unknown))}; "
                f"choose among {', '.join(KINDS)}"
            )
        self._kinds = tuple(kind for kind in _ORDER if kind in chosen)
        self._placeholders: dict[str, str] = {}
        self._values: dict[str, str] = {}
        self._issued: dict[str, int] = dict.fromkeys(_NAMES, 0)
        self._counts: dict[str, int] = dict.fromkeys(chosen, 0)

    @property
    def counts(self) -> dict[str, int]:
        """Values replaced so far, by kind (every occurrence counts)."""
        return dict(self._counts)

    def redact(self, text: str) -> str:
        parts: list[str] = []
        pos = 0
        for start, end, kind, name in self._spans(text):
            parts.append(text[pos:start])
            parts.append(self._placeholder(text[start:end], kind, name))
            pos = end
        parts.append(text[pos:])
        return "".join(parts)

    def restore(self, text: str) -> str:
        return _PLACEHOLDER.sub(self._original, text)

    def restorer(self) -> StreamRestorer:
        return StreamRestorer(self)

    def _original(self, m: re.Match[str]) -> str:
        return self._values.get(f"<{m.group(1)}_{m.group(2)}>", m.group())

    def _placeholder(self, value: str, kind: str, name: str) -> str:
        if kind != _LITERAL:
            self._counts[kind] += 1
        known = self._placeholders.get(value)
        if known is not None:
            return known
        self._issued[name] += 1
        placeholder = f"<{name}_{self._issued[name]}>"
        self._placeholders[value] = placeholder
        self._values[placeholder] = value
        return placeholder

    def _spans(self, text: str) -> list[tuple[int, int, str, str]]:
        """Non-overlapping matches in order: (start, end, kind, placeholder name)."""
        found = [
            (m.start(), m.end(), -1, _LITERAL, m.group(1)) for m in _PLACEHOLDER.finditer(text)
        ]
        for rank, kind in enumerate(self._kinds):
            found.extend(
                (start, end, rank, kind, kind.upper())
                for find in FINDERS[kind]
                for start, end in find(text)
                if end > start
            )
        found.sort(key=lambda f: (f[0] - f[1], f[2], f[0]))
        taken = bytearray(len(text))
        chosen: list[tuple[int, int, str, str]] = []
        for start, end, _, kind, name in found:
            if taken.find(1, start, end) == -1:
                taken[start:end] = b"\x01" * (end - start)
                chosen.append((start, end, kind, name))
        chosen.sort()
        return chosen


class StreamRestorer:
    """Restores placeholders in a streamed text, holding back one cut between deltas.

    ``feed`` returns what is safe to emit: a trailing ``<EMA`` waits for the next
    delta, and is let go as soon as it can no longer become a placeholder.
    """

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor
        self._held = ""

    def feed(self, delta: str) -> str:
        text = self._held + delta
        cut = _pending_from(text)
        self._held = text[cut:]
        return self._redactor.restore(text[:cut])

    def flush(self) -> str:
        text, self._held = self._held, ""
        return self._redactor.restore(text)


def _pending_from(text: str) -> int:
    """Where an unfinished placeholder may start at the end of ``text`` (else its length)."""
    for i in range(max(0, len(text) - _LONGEST), len(text)):
        if text[i] in "<&" and _unfinished(text[i:]):
            return i
    return len(text)


def _unfinished(tail: str) -> bool:
    for opener, closer in _FORMS:
        if opener.startswith(tail):
            return True
        if not tail.startswith(opener):
            continue
        rest = tail[len(opener) :]
        for name in _NAMES:
            head = name + "_"
            if head.startswith(rest):
                return True
            if rest.startswith(head):
                number = rest[len(head) :]
                after = number.lstrip("0123456789")
                digits = len(number) - len(after)
                if digits <= 9 and (
                    not after or (digits > 0 and after != closer and closer.startswith(after))
                ):
                    return True
    return False

"""What counts as personal data or a secret: one finder per kind, each a bounded regular
expression followed by a checksum or shape check where one exists::

    for start, end in FINDERS["card"][0]("pay with 4111 1111 1111 1111 today"):
        ...                                     # (9, 28): Luhn-valid, so a card

Every pattern starts behind a look-behind that refuses to begin inside a run of what
it consumes, and every repetition is bounded, so a scan is linear in the text's
length. ``Redactor`` (``pii.py``) runs the finders and resolves overlaps.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

Span = tuple[int, int]
Finder = Callable[[str], Iterator[Span]]
_F = re.ASCII


def _regex(
    pattern: str, check: Callable[[str], bool] | None = None, group: int = 0, flags: int = 0
) -> Finder:
    compiled = re.compile(pattern, _F | flags)

    def find(text: str) -> Iterator[Span]:
        for m in compiled.finditer(text):
            if check is None or check(m.group(group)):
                yield m.span(group)

    return find


def _digits(s: str) -> str:
    return "".join(c for c in s if c.isdigit())


# E-mail ---------------------------------------------------------------------------

_EMAIL = (
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@"
    r"[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){1,8}(?![A-Za-z0-9-]|\.[A-Za-z0-9])"
)


def _email_ok(s: str) -> bool:
    local, _, domain = s.partition("@")
    tld = domain.rsplit(".", 1)[-1]
    return not local.startswith(".") and ".." not in local and len(tld) >= 2 and tld.isalpha()


# Phone numbers --------------------------------------------------------------------

_PHONE = re.compile(
    r"(?<![\w+.\-/])(?:\+[0-9]{8,15}"
    r"|\+[0-9]{1,3}[ .-]?(?:\([0-9]{1,5}\)[ .-]?)?[0-9]{1,8}(?:[ .-][0-9]{1,8}){0,7}"
    r"|\([0-9]{1,5}\)[ .-]?[0-9]{1,8}(?:[ .-][0-9]{1,8}){0,7}"
    r"|[0-9]{1,5}(?:[ .-][0-9]{1,8}){1,7})"
    r"(?![\w]|[.-][0-9])",
    _F,
)
_DATE = re.compile(
    r"(?<![0-9])(?:[0-9]{4}([./-])[0-9]{1,2}\1[0-9]{1,2}|[0-9]{1,2}([./-])[0-9]{1,2}\2[0-9]{4})"
    r"(?![0-9])",
    _F,
)
_YEAR = re.compile(r"(?:1[89]|2[0-9])[0-9]{2}", _F)


def _is_date(s: str) -> bool:
    return bool(_DATE.fullmatch(s) or _YEAR.fullmatch(s))


_GROUPS = re.compile(r"[0-9]+", _F)
_NANP_FIRST = tuple("23456789")


def _phone_ok(s: str) -> bool:
    digits = _digits(s)
    groups = [len(g) for g in _GROUPS.findall(s)]
    if s.startswith("+"):
        return 8 <= len(digits) <= 15 and digits[0] != "0" and not _DATE.search(s)
    if len(groups) < 2 or _DATE.search(s):
        return False
    if digits.startswith("00"):
        return 10 <= len(digits) <= 17 and digits[2] != "0"
    if digits.startswith("0"):
        return 9 <= len(digits) <= 11 and groups[0] >= 2 and digits[1] != "0"
    if "." in s and len(groups) == 4 and all(int(g) <= 255 for g in _GROUPS.findall(s)):
        return False
    nanp = digits[1:] if groups[:1] == [1] and digits[0] == "1" else digits
    shape = groups[1:] if len(groups) == 4 else groups
    valid_codes = nanp[:1] in _NANP_FIRST and nanp[3:4] in _NANP_FIRST
    return len(nanp) == 10 and shape == [3, 3, 4] and valid_codes


def _pieces(text: str, start: int, end: int, seps: str) -> list[Span]:
    """The runs of whole groups inside ``text[start:end]``, longest first."""
    cuts = [i for i in range(start, end) if text[i] in seps]
    if len(cuts) > 9:
        return []
    starts, ends = [start] + [c + 1 for c in cuts], [*cuts, end]
    spans = [(a, b) for a in starts for b in ends if a < b and (a, b) != (start, end)]
    return sorted(spans, key=lambda span: span[0] - span[1])


def _grouped(
    pattern: re.Pattern[str],
    ok: Callable[[str], bool],
    seps: str,
    droppable: Callable[[str], bool] = lambda _: True,
) -> Finder:
    """Matches of ``pattern`` that pass ``ok``, or else their longest run of groups that
    does, when what it leaves out is ``droppable``."""

    def find(text: str) -> Iterator[Span]:
        for m in pattern.finditer(text):
            if ok(m.group()):
                yield m.span()
                continue
            start, end = m.span()
            if not any(droppable(part) for part in re.split(f"[{seps}]", m.group())):
                continue
            for a, b in _pieces(text, start, end, seps):
                rest = (text[start:a].strip(seps), text[b:end].strip(seps))
                if all(not r or droppable(r) for r in rest) and ok(text[a:b]):
                    yield a, b
                    break

    return find


# Payment cards and IBANs ----------------------------------------------------------


_CARD = re.compile(r"(?<![\w.+-])[0-9](?:[ -]?[0-9]){12,18}(?![\w]|[.-][0-9])", _F)


def _luhn(s: str) -> bool:
    if min(len(g) for g in re.split("[ -]", s)) < 3:
        return False
    digits = [int(c) for c in _digits(s)]
    total = sum(digits[-1::-2]) + sum(sum(divmod(2 * d, 10)) for d in digits[-2::-2])
    return 13 <= len(digits) <= 19 and total % 10 == 0 and any(digits)


_IBAN_TABLE = (
    "AD24 AE23 AL28 AT20 AZ28 BA20 BE16 BG22 BH22 BR29 BY28 CH21 CR22 CY28 CZ24 DE22 "
    "DK18 DO28 EE20 EG29 ES24 FI18 FO18 FR27 GB22 GE22 GI23 GL18 GR27 GT28 HR21 HU28 "
    "IE22 IL23 IQ23 IS26 IT27 JO30 KW30 KZ20 LB28 LC32 LI21 LT20 LU20 LV21 MC27 MD24 "
    "ME22 MK19 MR27 MT31 MU30 NL18 NO15 PK24 PL28 PS29 PT25 QA29 RO24 RS22 SA24 SC31 "
    "SE24 SI19 SK24 SM27 ST25 SV28 TL23 TN24 TR26 UA29 VA22 VG24 XK20"
)
_IBAN_LENGTHS = {entry[:2]: int(entry[2:]) for entry in _IBAN_TABLE.split(" ")}
_IBAN = re.compile(r"(?<![\w])[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}", _F)


_BASE36 = str.maketrans({c: str(int(c, 36)) for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"})


def _mod97(iban: str) -> bool:
    return int((iban[4:] + iban[:4]).translate(_BASE36)) % 97 == 1


def _ibans(text: str) -> Iterator[Span]:
    pos = 0
    while m := _IBAN.search(text, pos):
        pos, s = m.start() + 1, m.group()
        want = _IBAN_LENGTHS.get(s[:2], 0)
        compact = s.replace(" ", "")
        if not want or len(compact) < want or not _mod97(compact[:want]):
            continue
        end, seen = m.start(), 0
        while seen < want:
            seen += text[end] != " "
            end += 1
        if end == len(text) or not text[end].isalnum():
            yield m.start(), end
            pos = end


# National ids ---------------------------------------------------------------------


def _ssn_ok(s: str) -> bool:
    d = _digits(s)
    area, group, serial = int(d[:3]), int(d[3:5]), int(d[5:])
    return 0 < area < 900 and area != 666 and group > 0 and serial > 0


_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def _dni_ok(s: str) -> bool:
    s = s.replace("-", "")
    number = str("XYZ".index(s[0])) + s[1:-1] if s[0] in "XYZ" else s[:-1]
    return _DNI_LETTERS[int(number) % 23] == s[-1]


def _bsn_ok(s: str) -> bool:
    d = [int(c) for c in _digits(s)]
    return (
        any(d) and (sum(w * x for w, x in zip(range(9, 1, -1), d, strict=False)) - d[8]) % 11 == 0
    )


def _nir_ok(s: str) -> bool:
    compact = s.replace(" ", "")
    body = compact[:13].replace("2A", "19").replace("2B", "18")
    return 97 - int(body) % 97 == int(compact[13:])


_NINO_BAD = {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}

# Secrets --------------------------------------------------------------------------

_PEM_BEGIN = re.compile(r"-----BEGIN ([A-Z0-9 ]{0,24}PRIVATE KEY)-----", _F)


def _pem_blocks(text: str) -> Iterator[Span]:
    end_at: int | None = None
    for m in _PEM_BEGIN.finditer(text):
        if end_at is None or -1 < end_at < m.end():
            end_at = text.find("-----END ", m.end())
        if end_at == -1:
            return
        close = f"-----END {m.group(1)}-----"
        if text.startswith(close, end_at):
            yield m.start(), end_at + len(close)


_KEYWORD = (
    r"(?i:\b(?:password|passwd|pwd|passphrase|secret|client[_-]?secret|api[_-]?key|apikey|"
    r"access[_-]?token|auth[_-]?token|bearer[_-]?token|token|private[_-]?key)\b)"
)
_ASSIGNED = _KEYWORD + r"""["']?[ \t]{0,3}[:=][ \t]{0,3}["']?([^\s"',;&<>]{4,200})"""
_NOT_A_VALUE = {"null", "none", "true", "false", "undefined", "required", "string"}


def _value_ok(value: str) -> bool:
    return value.lower() not in _NOT_A_VALUE and value[0] not in "$%{*" and set(value) != {"x"}


FINDERS: dict[str, tuple[Finder, ...]] = {
    "email": (_regex(_EMAIL, _email_ok),),
    "phone": (_grouped(_PHONE, _phone_ok, " ", _is_date),),
    "card": (_grouped(_CARD, _luhn, " -"),),
    "iban": (_ibans,),
    "national_id": (
        _regex(r"(?<![\w-])[0-9]{3}([- ])[0-9]{2}\1[0-9]{4}(?![\w-])", _ssn_ok),
        _regex(
            r"(?<!\w)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D]"
            r"(?!\w)",
            lambda s: s[:2] not in _NINO_BAD,
        ),
        _regex(r"(?<![\w-])(?:[0-9]{8}|[XYZ][0-9]{7})-?[A-Z](?!\w)", _dni_ok),
        _regex(
            r"(?i:\bbsn|burgerservicenummer)[^\w\n]{0,3}([0-9]{9}|[0-9]{4}\.[0-9]{2}\.[0-9]{3})(?!\w)",
            _bsn_ok,
            group=1,
        ),
        _regex(
            r"(?<![\w])[12] ?[0-9]{2} ?(?:0[1-9]|1[0-2]|[2-9][0-9]) ?(?:[0-9]{2}|2[AB]) ?"
            r"[0-9]{3} ?[0-9]{3} ?[0-9]{2}(?!\w)",
            _nir_ok,
        ),
    ),
    "secret": (
        _regex(r"(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9])"),
        _regex(
            r"(?i:aws_?secret_?(?:access_?)?key|secret_?access_?key)[\"']?[ \t]{0,3}[:=]"
            r"[ \t]{0,3}[\"']?([A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])",
            group=1,
        ),
        _regex(r"(?<![\w-])(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_\w{22,244})(?![\w-])"),
        _regex(r"(?<![\w-])xox[abposr]-[A-Za-z0-9-]{10,250}(?![\w-])"),
        _regex(r"(?<![\w-])sk-(?:proj-|svcacct-|admin-|ant-)?[A-Za-z0-9_-]{20,250}(?![\w-])"),
        _regex(r"(?<![\w-])AIza[A-Za-z0-9_-]{35}(?![\w-])"),
        _regex(
            r"(?<![\w-])eyJ[A-Za-z0-9_-]{5,4000}\.eyJ[A-Za-z0-9_-]{5,8000}\.[A-Za-z0-9_-]{8,4000}"
            r"(?![\w-])"
        ),
        _pem_blocks,
        _regex(r"(?<![\w-])rl_[A-Za-z0-9_-]{43}(?![\w-])"),
        _regex(_ASSIGNED, _value_ok, group=1),
    ),
}

from __future__ import annotations

import random
import time

import pytest

from ragline.answer.pii import KINDS, Redactor
from ragline.errors import ConfigurationError

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkFubiJ9"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo\n"
    "4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u\n"
    "-----END RSA PRIVATE KEY-----"
)

POSITIVES = [
    ("email", "ann@example.org"),
    ("email", "first.last+tag@mail.example.co.uk"),
    ("phone", "+44 20 7946 0958"),
    ("phone", "+442079460958"),
    ("phone", "+1 (415) 555-2671"),
    ("phone", "+49 (0)30 1234567"),
    ("phone", "+33 1 23 45 67 89"),
    ("phone", "0044 20 7946 0958"),
    ("phone", "(415) 555-2671"),
    ("phone", "415-555-2671"),
    ("phone", "415.555.2671"),
    ("phone", "1-415-555-2671"),
    ("phone", "020 7946 0958"),
    ("phone", "07700 900123"),
    ("phone", "01 23 45 67 89"),
    ("phone", "01.23.45.67.89"),
    ("phone", "030 1234567"),
    ("card", "4111 1111 1111 1111"),
    ("card", "4111-1111-1111-1111"),
    ("card", "5555555555554444"),
    ("card", "3782 822463 10005"),
    ("card", "6011111111111117"),
    ("iban", "DE89 3704 0044 0532 0130 00"),
    ("iban", "DE89370400440532013000"),
    ("iban", "GB82WEST12345698765432"),
    ("iban", "FR14 2004 1010 0505 0001 3M02 606"),
    ("iban", "NL91ABNA0417164300"),
    ("national_id", "123-45-6789"),
    ("national_id", "AB 12 34 56 C"),
    ("national_id", "AB123456C"),
    ("national_id", "12345678Z"),
    ("national_id", "X1234567L"),
    ("national_id", "1 84 12 76 451 089 46"),
    ("secret", "AKIAIOSFODNN7EXAMPLE"),
    ("secret", "ghp_" + "a1B2" * 9),
    ("secret", "github_pat_11ABCDEFG0" + "x" * 60),
    ("secret", "xoxb-123456789012-abcdefABCDEF"),
    ("secret", "sk-proj-" + "Ab3_" * 10),
    ("secret", "sk-" + "q" * 48),
    ("secret", "AIza" + "SyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q"),
    ("secret", JWT),
    ("secret", PEM),
    ("secret", "rl_" + "Zk9-_" * 8 + "abc"),
]


@pytest.mark.parametrize(("kind", "value"), POSITIVES)
def test_each_kind_is_found(kind: str, value: str) -> None:
    redactor = Redactor()
    text = f"Before {value}, after."
    redacted = redactor.redact(text)
    assert redacted == f"Before <{kind.upper()}_1>, after."
    assert redactor.counts[kind] == 1
    assert sum(redactor.counts.values()) == 1
    assert redactor.restore(redacted) == text


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", None),
        ("password=hunter22", "hunter22"),
        ('"api_key": "abcd1234efgh"', "abcd1234efgh"),
        ("client_secret: s3cr3t-v4lue", "s3cr3t-v4lue"),
        ("bsn: 111222333", "111222333"),
        ("BSN 1112.22.333", "1112.22.333"),
    ],
)
def test_values_after_a_keyword_are_found(text: str, value: str | None) -> None:
    redactor = Redactor()
    redacted = redactor.redact(text)
    secret = value or text.rsplit(" ", 1)[-1]
    assert secret not in redacted
    assert redacted.endswith(">") or redacted.endswith('>"')
    assert redactor.restore(redacted) == text


NEGATIVES = [
    # payment cards that fail Luhn, and numbers that are not cards
    "4111 1111 1111 1112",
    "5555555555554445",
    "0000 0000 0000 0000",
    "order 1234 5678 9012 3456",
    # IBANs that fail mod 97, or a country without IBANs
    "DE89 3704 0044 0532 0130 01",
    "GB82WEST12345698765433",
    "ZZ12345678901234567890",
    # dates, times, years, versions and other numbers that are not phones
    "2024-01-15",
    "15/01/2024",
    "15.01.2024",
    "2024-01-15T10:30:00Z",
    "2024-01-15 10:30:00.123",
    "from 1990-2000",
    "in 1999 and 2024",
    "v1.2.3",
    "version 10.0.19041.1",
    "host 192.168.100.200",
    "as stated in [3] and [12]",
    "12345",
    "pages 12-14",
    "ISBN 978-3-16-148410-0",
    "1 000 000",
    "pi is 3.14159",
    "415-155-2671",
    "between 100 and 200 mg",
    # national ids that break their rules
    "666-45-6789",
    "000-12-3456",
    "912-45-6789",
    "123-00-6789",
    "123-45-0000",
    "GB 12 34 56 C",
    "DA123456C",
    "12345678A",
    "bsn: 111222334",
    "1 84 12 76 451 089 47",
    # secrets that are not there
    "AKIA1234",
    "sk-short",
    "password: null",
    "password=${DB_PASSWORD}",
    "-----BEGIN RSA PRIVATE KEY----- and no end",
    "rl_tooshort",
    "eyJhbGciOiJIUzI1NiJ9 alone",
    # e-mail look-alikes
    "user@localhost",
    "@handle and a@b",
]


@pytest.mark.parametrize("text", NEGATIVES)
def test_look_alikes_are_left_alone(text: str) -> None:
    redactor = Redactor()
    assert redactor.redact(text) == text
    assert sum(redactor.counts.values()) == 0


DOCUMENT = (
    "Contact Ann Smith at ann@example.org or +44 20 7946 0958 (office: 020 7946 0000).\n"
    "Refunds go to DE89 3704 0044 0532 0130 00; card 4111 1111 1111 1111 was charged on "
    "2024-01-15T10:30:00Z for version 2.4.1 [3].\n"
    f"SSN 123-45-6789, NINO AB123456C. Deploy with api_key: {'Zq' * 10} and token {JWT}.\n"
    "Escalate to ann@example.org again."
)


def test_round_trip_and_same_value_same_placeholder() -> None:
    redactor = Redactor()
    redacted = redactor.redact(DOCUMENT)
    assert redactor.restore(redacted) == DOCUMENT
    for value in ("ann@example.org", "4111 1111", "123-45-6789", "DE89", "Zq" * 10, JWT):
        assert value not in redacted
    assert "2024-01-15T10:30:00Z" in redacted
    assert "2.4.1 [3]" in redacted
    assert redacted.count("<EMAIL_1>") == 2
    assert "<EMAIL_2>" not in redacted
    assert redactor.counts == {
        "email": 2,
        "phone": 2,
        "card": 1,
        "iban": 1,
        "national_id": 2,
        "secret": 2,
    }
    question = redactor.redact("What did ann@example.org pay with 4111-1111-1111-1111?")
    assert question == "What did <EMAIL_1> pay with <CARD_2>?"
    assert redactor.restore("Ann (<EMAIL_1>) paid with <CARD_1>.") == (
        "Ann (ann@example.org) paid with 4111 1111 1111 1111."
    )


def test_restore_leaves_unknown_placeholders_and_accepts_the_escaped_form() -> None:
    redactor = Redactor()
    redactor.redact("mail ann@example.org")
    assert redactor.restore("<EMAIL_9> <CARD_1> <EMAIL_01> <email_1>") == (
        "<EMAIL_9> <CARD_1> <EMAIL_01> <email_1>"
    )
    assert redactor.restore("write to &lt;EMAIL_1&gt;") == "write to ann@example.org"


def test_text_that_already_holds_placeholders_is_not_confused() -> None:
    redactor = Redactor()
    template = "Reply to <EMAIL_1> or &lt;PHONE_1&gt; with <SECRET_3>."
    first = redactor.redact(template)
    second = redactor.redact("Ann is ann@example.org, call 020 7946 0958.")
    assert first == "Reply to <EMAIL_1> or <PHONE_1> with <SECRET_1>."
    assert second == "Ann is <EMAIL_2>, call <PHONE_2>."
    assert redactor.restore(first) == template
    assert redactor.restore("<EMAIL_1> wrote to <EMAIL_2>; <PHONE_1>") == (
        "<EMAIL_1> wrote to ann@example.org; &lt;PHONE_1&gt;"
    )
    assert redactor.counts["email"] == 1
    assert redactor.counts["secret"] == 0


def test_overlaps_prefer_the_longer_then_the_more_specific_match() -> None:
    redactor = Redactor()
    assert redactor.redact("key rl_" + "A" * 43) == "key <SECRET_1>"
    assert redactor.redact("api_key=rl_" + "B" * 43) == "api_key=<SECRET_2>"
    assert redactor.redact("415-555-2671@example.org") == "<EMAIL_1>"
    assert redactor.redact("IBAN GB82 WEST 1234 5698 7654 32") == "IBAN <IBAN_1>"
    assert redactor.counts["phone"] == 0


def test_only_the_chosen_kinds_are_redacted() -> None:
    redactor = Redactor(["email", "secret"])
    text = "ann@example.org 4111 1111 1111 1111 +44 20 7946 0958 AKIAIOSFODNN7EXAMPLE"
    assert redactor.redact(text) == "<EMAIL_1> 4111 1111 1111 1111 +44 20 7946 0958 <SECRET_1>"
    assert redactor.counts == {"email": 1, "secret": 1}
    assert set(Redactor().counts) == set(KINDS)
    with pytest.raises(ConfigurationError, match="choose among email"):
        Redactor(["email", "postcode"])


STREAMED = "Ann (<EMAIL_1>) pays with &lt;CARD_1&gt;; <EMAIL_2> and a < b & c <EMAIL_1"


def _redactor_for_stream() -> Redactor:
    redactor = Redactor()
    redactor.redact("ann@example.org 4111 1111 1111 1111")
    return redactor


def test_stream_restorer_with_every_cut() -> None:
    redactor = _redactor_for_stream()
    expected = redactor.restore(STREAMED)
    assert expected.startswith("Ann (ann@example.org) pays with 4111 1111 1111 1111;")
    for i in range(len(STREAMED) + 1):
        for j in range(i, len(STREAMED) + 1):
            restorer = redactor.restorer()
            parts = [restorer.feed(p) for p in (STREAMED[:i], STREAMED[i:j], STREAMED[j:])]
            assert "".join(parts) + restorer.flush() == expected, (i, j)
    restorer = redactor.restorer()
    assert "".join(restorer.feed(c) for c in STREAMED) + restorer.flush() == expected


def test_stream_restorer_holds_back_only_what_may_be_a_placeholder() -> None:
    restorer = _redactor_for_stream().restorer()
    assert restorer.feed("Write to <EMA") == "Write to "
    assert restorer.feed("IL_1>.") == "ann@example.org."
    assert restorer.feed(" a <") == " a "
    assert restorer.feed(" b") == "< b"
    assert restorer.feed(" <EMAIL_") == " "
    assert restorer.feed("x") == "<EMAIL_x"
    assert restorer.feed(" R&") == " R"
    assert restorer.feed("D") == "&D"
    assert restorer.feed(" <CARD_1") == " "
    assert restorer.flush() == "<CARD_1"


HOSTILE = {
    "digits and spaces": "1 " * 500_000,
    "iban heads": "DE89 " * 200_000,
    "e-mail fragments": "a@b." * 250_000,
    "pem openers": "-----BEGIN PRIVATE KEY-----" * 37_000,
    "token heads": "eyJ" * 333_333,
    "placeholder heads": "<EMAIL_" * 142_857,
    "noise": "".join(random.Random(7).choice("0123456789 -.+()@aZ<>_=:") for _ in range(10**6)),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_megabyte_is_redacted_in_linear_time(name: str) -> None:
    text = HOSTILE[name]
    redactor = Redactor()
    started = time.perf_counter()
    redacted = redactor.redact(text)
    assert time.perf_counter() - started < 30
    assert redactor.restore(redacted) == text

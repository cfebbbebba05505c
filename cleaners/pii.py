"""Personal data out of training text: e-mail addresses, phone numbers, payment cards, IBANs and IP addresses.

Support text is full of numbers that are not personal: order ids (``#NW-48213``), prices (``$129.99``),
dates (``2024-03-15``), versions, ``{{placeholders}}``. So every pattern is anchored on a shape that
those never take, and the numeric kinds are validated: cards by Luhn and an issuer digit (2-6), IBANs by
country length and the mod-97 check, IPv4 octets by range, IPv6 by ``ipaddress``, phones by separators
(a bare run of digits is an id more often than a phone) and an E.164-sized digit count.
Kinds are replaced in a fixed order (e-mail, IBAN, card, IP, phone) so a placeholder is never re-matched.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter

from cleaners.config import PIIConfig
from tuneprep.stage import TextMap

PII_KINDS = ("email", "iban", "card", "ip", "phone")

EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])"
)
IBAN = re.compile(r"(?<![\w-])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?(?![\w-])")
# Not glued to a longer digit-group run (a rejected IBAN's tail, a tracking number): `(?<!\d )`, `(?! \d)`.
_NOT_IN_RUN_BEFORE = r"(?<!\d )(?<!\d-)"
_NOT_IN_RUN_AFTER = r"(?! \d)(?!-\d)"
CARD = re.compile(
    rf"(?<![\w.,#/-]){_NOT_IN_RUN_BEFORE}[2-6]\d{{3}}(?:[ -]?\d){{9,15}}(?![\w/-]|[.,]\d){_NOT_IN_RUN_AFTER}"
)
IPV4 = re.compile(
    r"(?<![\w.:-])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\w-]|\.\w)"
)
IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
_SEP = r"[ .-]"
PHONE = re.compile(
    rf"(?<![\w#/+$€£.-]){_NOT_IN_RUN_BEFORE}(?:"
    # international: +CC then 6-13 more digits in groups, e.g. +44 20 7946 0958, +1-415-555-0132, +49 (0)30 1234567
    rf"\+\d{{1,3}}(?:{_SEP}?\(0\))?(?:{_SEP}?\(?\d{{1,4}}\)?){{2,5}}"
    # North American: (415) 555-0132, 415-555-0132, 415.555.0132, 1-800-555-0199
    rf"|(?:1{_SEP})?(?:\(\d{{3}}\) ?|\d{{3}}{_SEP})\d{{3}}{_SEP}\d{{4}}"
    # UK and most of Europe: trunk 0 then 9-10 digits in 2-3 groups, e.g. 020 7946 0958, 07700 900123, 030 1234567
    r"|0\d{2,4}[ -]\d{3,8}(?:[ -]\d{3,4})?"
    # France and Belgium style: 01 23 45 67 89
    r"|0\d(?:[ .]\d{2}){4}"
    rf")(?![\w/-]|[.,]\d){_NOT_IN_RUN_AFTER}"
)
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24,
    "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21,
    "HU": 28, "IE": 22, "IL": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LI": 21,
    "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30,
    "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SE": 24, "SI": 19, "SK": 24, "SM": 27, "TN": 24, "TR": 26, "UA": 29, "VG": 24, "XK": 20,
}  # fmt: skip


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum every payment card number carries."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(candidate: str) -> bool:
    """Country length (where known) and the ISO 13616 mod-97 check."""
    iban = candidate.replace(" ", "").upper()
    expected = IBAN_LENGTHS.get(iban[:2])
    if (expected is not None and len(iban) != expected) or not 15 <= len(iban) <= 34:
        return False
    rotated = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in rotated)) % 97 == 1


def _card(m: re.Match[str]) -> bool:
    digits = re.sub(r"[ -]", "", m.group(0))
    return 13 <= len(digits) <= 19 and luhn_ok(digits)


def _iban(m: re.Match[str]) -> str | None:
    """The valid IBAN at the start of the match: a trailing capitalised word may have been swallowed."""
    text = m.group(0)
    while text:
        if iban_ok(text):
            return text
        if " " not in text:
            return None
        text = text.rsplit(" ", 1)[0]
    return None


def _ipv6(m: re.Match[str]) -> bool:
    s = m.group(0)
    if sum(1 for g in s.split(":") if g) < 2:
        return False
    try:
        ipaddress.IPv6Address(s)
    except ValueError:
        return False
    return True


_DIGIT = re.compile(r"\d")


def _digits(text: str) -> int:
    """How many characters ``\\d`` matches: the numeric kinds are skipped on texts with too few to hold one."""
    return sum(map(text.count, "0123456789")) if text.isascii() else len(_DIGIT.findall(text))


# Fewest ``\d`` characters a match can hold: IBAN check digits; a card's 13; IPv4's 4 octets; a phone's 9
# (``_phone``: its digit characters are all ``\d`` matches).
_MIN_DIGITS = {"iban": 2, "card": 13, "ip": 4, "phone": 9}
# What every match of a kind holds, found by a simpler search than the kind's own pattern (lookbehinds and
# alternations): on support text most texts lack it, and the kind is skipped.
_IBAN_START = re.compile(r"[A-Z]{2}\d\d")
_IPV4_DOT = re.compile(r"\d\.\d")


def _phone(m: re.Match[str]) -> bool:
    return 9 <= sum(c.isdigit() for c in m.group(0)) <= 15


class Allow:
    """The values redaction leaves in place (``clean.pii.allow``): exact strings, numbers by their digits,
    e-mail domains, and ``re:`` patterns matched against the whole value."""

    _DOMAIN = re.compile(r"@?(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,24}")

    def __init__(self, entries: list[str]) -> None:
        self.exact: set[str] = set()
        self.digits: set[str] = set()
        self.domains: list[str] = []
        self.patterns: list[re.Pattern[str]] = []
        for entry in entries:
            value = entry.strip()
            if not value:
                continue
            if value.startswith("re:"):
                self.patterns.append(re.compile(value[3:]))
                continue
            self.exact.add(value.lower())
            digits = re.sub(r"\W", "", value).upper()
            if sum(c.isdigit() for c in digits) >= 6:
                self.digits.add(digits.lstrip("0") if digits.isdigit() else digits)
            if "@" not in value[1:] and self._DOMAIN.fullmatch(value):
                self.domains.append(value.lstrip("@").lower())

    def __bool__(self) -> bool:
        return bool(self.exact or self.patterns)

    def __call__(self, kind: str, value: str) -> bool:
        if value.lower() in self.exact or any(p.fullmatch(value) for p in self.patterns):
            return True
        if kind == "email":
            domain = value.rsplit("@", 1)[-1].lower()
            return any(domain == d or domain.endswith("." + d) for d in self.domains)
        if self.digits:
            digits = re.sub(r"\W", "", value).upper()
            if digits.isdigit():  # "+1 415 555 0132" also keeps "(415) 555-0132": a national number's tail
                digits = digits.lstrip("0")
                return digits in self.digits or any(
                    min(len(d), len(digits)) >= 9 and (d.endswith(digits) or digits.endswith(d)) for d in self.digits
                )
            return digits in self.digits
        return False


def redact_pii(
    text: str | None, cfg: PIIConfig | None = None, allow: Allow | None = None
) -> tuple[str | None, Counter]:
    """Replace personal data with placeholders; returns the text and how many of each kind were replaced.

    Values ``allow`` (default: built from ``cfg.allow``) accepts stay as they are."""
    counts: Counter = Counter()
    if not text:
        return text, counts
    cfg = cfg or _DEFAULT
    ph = cfg.placeholders
    allow = allow if allow is not None else Allow(cfg.allow)

    def sub(rx: re.Pattern[str], kind: str, s: str, valid=None) -> str:
        def repl(m: re.Match[str]) -> str:
            if valid is not None and not valid(m):
                return m.group(0)
            if allow and allow(kind, m.group(0)):
                counts[f"{kind}_allowed"] += 1
                return m.group(0)
            counts[kind] += 1
            return ph.get(kind, f"<{kind.upper()}>")

        return rx.sub(repl, s)

    if cfg.email and "@" in text:
        text = sub(EMAIL, "email", text)
    digits = _digits(text)  # recounted after a kind replaced anything (a custom placeholder may hold digits)
    if cfg.iban and digits >= _MIN_DIGITS["iban"] and _IBAN_START.search(text):

        def iban_repl(m: re.Match[str]) -> str:
            found = _iban(m)
            if found is None:
                return m.group(0)
            if allow and allow("iban", found):
                counts["iban_allowed"] += 1
                return m.group(0)
            counts["iban"] += 1
            return ph.get("iban", "<IBAN>") + m.group(0)[len(found) :]

        text, before = IBAN.sub(iban_repl, text), text
        digits = digits if text == before else _digits(text)
    if cfg.card and digits >= _MIN_DIGITS["card"]:
        text, before = sub(CARD, "card", text, _card), text
        digits = digits if text == before else _digits(text)
    if cfg.ip:
        if digits >= _MIN_DIGITS["ip"] and _IPV4_DOT.search(text):
            text, before = sub(IPV4, "ip", text), text
            digits = digits if text == before else _digits(text)
        if "::" in text or text.count(":") >= 7:
            text, before = sub(IPV6, "ip", text, _ipv6), text
            digits = digits if text == before else _digits(text)
    if cfg.phone and digits >= _MIN_DIGITS["phone"]:
        text = sub(PHONE, "phone", text, _phone)
    return text, counts


_DEFAULT = PIIConfig()


class RedactPII(TextMap):
    """Redacts text and every chat message, with each role's settings; never drops. Counts per kind accumulate
    for the report, and so do the values left in place because the allow-list names them."""

    name = "pii_redaction"

    def __init__(self, cfg: PIIConfig | None = None) -> None:
        self.cfg = cfg or PIIConfig()
        self.counts: Counter = Counter()
        self.records_with_pii = 0
        self._found: Counter = Counter()
        self._per_role: dict[str | None, tuple[PIIConfig, Allow]] = {None: (self.cfg, Allow(self.cfg.allow))}

    def settings(self, role: str | None) -> tuple[PIIConfig, Allow]:
        """The settings and allow-list for a turn of ``role`` (the base ones for plain text and unlisted roles)."""
        if role not in self._per_role:
            over = self.cfg.roles.get(role or "")
            if over is None:
                self._per_role[role] = self._per_role[None]
            else:
                kinds = {k: v for k, v in over.model_dump(include=set(PII_KINDS)).items() if v is not None}
                self._per_role[role] = (self.cfg.model_copy(update=kinds), Allow([*self.cfg.allow, *over.allow]))
        return self._per_role[role]

    def begin_record(self) -> None:
        self._found.clear()

    def map_text(self, text: str, role: str | None) -> str:
        cfg, allow = self.settings(role)
        out, counts = redact_pii(text, cfg, allow)
        self._found.update(counts)
        return out

    def end_record(self) -> None:
        if any(k in PII_KINDS for k in self._found):
            self.records_with_pii += 1
        self.counts.update(self._found)

    def summary(self) -> dict:
        """Replacements per kind (every kind listed, zeros included), how many records held any, and how many
        values the allow-list kept."""
        return {
            "pii": {k: self.counts.get(k, 0) for k in PII_KINDS},
            "records_with_pii": self.records_with_pii,
            "allowed": {k: self.counts[f"{k}_allowed"] for k in PII_KINDS if self.counts.get(f"{k}_allowed")},
        }

"""Phone numbers of DIDs and callers: E.164 normalisation (ITU-T E.164, RFC 3966 §5.1.4).

A DID is stored and looked up in E.164 form (``+12125550100``) so that the number a trunk puts in
a Request-URI (``12125550100``, ``+1 212 555 0100``, ``1-800-FLOWERS``) and the number an operator
provisions meet in one key. The parsing rules are the ``phonenumbers`` library's (Google's
libphonenumber metadata): national formats need a default region; vanity letters are converted
with the ITU E.161 keypad map; a number is accepted only when the metadata says it is valid.

Trunks often send an international number without its ``+``. When a digit string is not a valid
number of the default region, it is tried once more as international (``442071838750`` →
``+442071838750``), which cannot turn a valid national number into another country's.

Pure: no I/O.
"""

from __future__ import annotations

import phonenumbers

_SEPARATORS = str.maketrans("", "", " -.()/")


def _parse_valid(number: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return None
    return parsed if phonenumbers.is_valid_number(parsed) else None


def normalize(number: str, default_region: str = "US") -> str | None:
    """``number`` in E.164 (``+`` and digits), or ``None`` when it is not a valid number.

    ``default_region`` (ISO 3166-1 alpha-2) applies to numbers written without a country code.
    """
    text = number.strip()
    if not text or len(text) > 64:
        return None
    parsed = _parse_valid(text, default_region.upper())
    compact = text.translate(_SEPARATORS)
    if parsed is None and compact.isdigit():
        parsed = _parse_valid("+" + compact, None)
    if parsed is None:
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def country_of(e164: str) -> str | None:
    """The ISO 3166-1 alpha-2 region of a valid E.164 number (``US``, ``GB``), else ``None``."""
    parsed = _parse_valid(e164, None)
    if parsed is None:
        return None
    return phonenumbers.region_code_for_number(parsed)

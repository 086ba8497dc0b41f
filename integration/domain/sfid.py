"""Salesforce record ids: accepted in 15- and 18-character form, compared in 18.

The 18-character form appends a 3-character checksum that encodes, for each
5-character chunk of the 15-character id, which letters are upper case
(Salesforce "Working with Record IDs"). Anything that is not a Salesforce id
(an email, a HubSpot owner id) is returned unchanged.
"""

from __future__ import annotations

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def to18(value: str) -> str:
    """The 18-character form of a 15-character id; other strings unchanged."""
    if len(value) == 18 and value.isalnum():
        return value[:15] + value[15:].upper()
    if len(value) != 15 or not value.isalnum():
        return value
    suffix = ""
    for start in (0, 5, 10):
        chunk = value[start : start + 5]
        bits = sum(1 << i for i, ch in enumerate(chunk) if "A" <= ch <= "Z")
        suffix += _ALPHABET[bits]
    return value + suffix


def same(a: str, b: str) -> bool:
    """Whether two ids name the same Salesforce record."""
    return to18(a) == to18(b)

"""The one rule for text that people type: no control characters (NUL, escape, backspace, bidi-free
C0/C1 controls...). Tab, line feed and carriage return stay allowed: text areas send them."""

from __future__ import annotations

import re
from typing import Any

CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
CONTROL_CHARACTERS_MESSAGE = "must not contain control characters (such as NUL)"


def has_control_characters(value: str) -> bool:
    return CONTROL_CHARACTERS.search(value) is not None


def control_character_fields(data: Any) -> dict[str, str]:
    """Field name -> reason for each field of a QueryDict-like mapping holding a control character."""
    bad = {}
    for name in data:
        values = data.getlist(name) if hasattr(data, "getlist") else [data[name]]
        if has_control_characters(name) or any(
            isinstance(value, str) and has_control_characters(value) for value in values
        ):
            bad[CONTROL_CHARACTERS.sub("?", name)[:64]] = CONTROL_CHARACTERS_MESSAGE
    return bad

"""Text from outside, made safe to store and to show: one rule for every boundary.

Channels (Twilio, Telegram, the simulator) and the visits API and CSV import pass every
text they take in through ``clean_text`` before it reaches the core or the database:

* lone surrogates (``"\\ud800"``, valid in JSON, not in UTF-8) become ``?``, so encoding
  the text never fails;
* NFC normalisation, so the same answer typed on two keyboards compares equal;
* C0 control characters except tab, newline and carriage return are removed, and so
  are the non-characters U+FFFE and U+FFFF. PostgreSQL refuses ``\\x00`` in text (the
  whole transaction fails), and none of these is allowed in XML (TwiML) either.
"""

from __future__ import annotations

import re
import unicodedata

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def clean_text(text: str) -> str:
    """``text`` as valid UTF-8, NFC, without NULs or other control characters."""
    text = text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates -> '?'
    text = unicodedata.normalize("NFC", text)
    return _CONTROL.sub("", text)

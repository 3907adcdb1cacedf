"""Text hygiene shared by loading and display: inert control characters, and telling language from noise.

Article files and LLM replies are untrusted. A terminal obeys escape sequences it is sent (clear the
screen, set the window title, recolour everything after), so they are removed before any text is
stored or shown. `index/` owns this module because it must not import `bot/`; `bot/` uses it too.
"""

from __future__ import annotations

import re
import unicodedata

# ESC-introduced sequences as terminals parse them: CSI (colours, cursor moves, clear screen),
# OSC (window title, hyperlinks; ended by BEL or ST), DCS/SOS/PM/APC strings, and two-byte escapes.
_ESCAPE_SEQUENCE = re.compile(
    r"\x1b(?:\[[0-?]*[ -/]*[@-~]?|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[PX^_][^\x1b]*(?:\x1b\\)?|[ -~]?)"
    r"|\x9b[0-?]*[ -/]*[@-~]?|\x9d[^\x07\x9c]*[\x07\x9c]?"
)
# What is left after the sequences: C0 controls but tab and newline, DEL, C1 controls, and the
# bidirectional overrides that can make displayed text read differently from what it is.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def strip_control(text: str) -> str:
    """text without terminal escape sequences and control characters (tab and newline stay; CR, FF, VT become newlines)."""
    if not text:
        return text
    text = text.replace("\r\n", "\n")
    text = _ESCAPE_SEQUENCE.sub("", text)
    text = text.replace("\r", "\n").replace("\f", "\n").replace("\v", "\n")
    return _CONTROL.sub("", text)


def fix_surrogates(text: str) -> str:
    """text with lone surrogates (undecodable bytes of argv, stdin or a file name) replaced by U+FFFD.

    Python smuggles such bytes through str as surrogates; printing, JSON, SQLite and Chroma then raise.
    """
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        raw = text.encode("utf-8", "surrogateescape")  # the bytes as they came, when they came that way
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "surrogatepass")
    return raw.decode("utf-8", "replace")


def safe_text(text: str) -> str:
    """A string fit for any display: valid Unicode, no control characters."""
    return strip_control(fix_surrogates(text))


_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\u0e00-\u0e7f\uf900-\ufaff]")
_SAMPLE = 32768


def _sample(text: str) -> str:
    """The start and the middle of a long text: enough to judge it, cheap on a 20 MB file."""
    if len(text) <= 2 * _SAMPLE:
        return text
    mid = len(text) // 2
    return text[:_SAMPLE] + "\n" + text[mid : mid + _SAMPLE]


def not_language(text: str) -> str | None:
    """Why decoded text is noise rather than language (random bytes, a base64 blob), or None when it reads as text."""
    # Escape sequences (colours in a captured log) are removed later, so they are not judged.
    sample = _ESCAPE_SEQUENCE.sub("", _sample(text))
    visible = [ch for ch in sample if not ch.isspace()]
    if len(visible) < 40:
        return None  # too short to judge; an empty file is reported elsewhere
    # Random bytes are ~10 % control characters; text has next to none.
    controls = sum(1 for ch in sample if ch not in "\t\n\r\f\v" and unicodedata.category(ch) in ("Cc", "Co", "Cs"))
    controls += sample.count("\ufffd")
    if controls / len(sample) > 0.05:
        return "control characters throughout"
    from charset_normalizer.md import mess_ratio

    # charset-normalizer's "mess" measure: improbable mixes of scripts, accents, symbols and case.
    if mess_ratio(sample, 1.0) > 0.3:
        return "characters in improbable mixes"
    letters = sum(1 for ch in visible if ch.isalpha())
    if letters / len(visible) < 0.3:
        return "too few letters"
    if len(_CJK.findall(sample)) < 0.2 * len(visible):
        # Scripts written with spaces: most of the text must be in word-sized pieces.
        long_chars = sum(len(w) for w in sample.split() if len(w) > 40)
        if long_chars > 0.5 * len(visible):
            return "no words"
    return None

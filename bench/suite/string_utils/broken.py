"""String utilities that look right, but is_palindrome compares case:
"Racecar" is not one."""

import re

_WORD = re.compile(r"[A-Za-z0-9]+")
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_SPACES = re.compile(r"(\s+)")


def _text(s):
    if not isinstance(s, str):
        raise TypeError(f"expected a str, not {type(s).__name__}")
    return s


def reverse(s):
    return _text(s)[::-1]


def is_palindrome(s):
    kept = [c for c in _text(s) if c.isalnum()]
    return kept == kept[::-1]


def word_count(s):
    counts = {}
    for word in _WORD.findall(_text(s)):
        word = word.lower()
        counts[word] = counts.get(word, 0) + 1
    return counts


def capitalize_words(s):
    parts = _SPACES.split(_text(s))
    return "".join(
        part if not part or part.isspace() else part[0].upper() + part[1:].lower()
        for part in parts
    )


def truncate(s, width, suffix="..."):
    _text(s)
    if width < len(suffix):
        raise ValueError(f"width {width} is smaller than the suffix {suffix!r}")
    if len(s) <= width:
        return s
    return s[: width - len(suffix)] + suffix


def slugify(s):
    return _NOT_SLUG.sub("-", _text(s).lower()).strip("-")

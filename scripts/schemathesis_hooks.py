"""Hooks scripts/schemathesis.sh loads.

1. Request bodies the spec declares as `video/mp4` (file uploads) are sent as the raw bytes
   schemathesis generates, as for application/octet-stream; without a serializer schemathesis
   reports "Serialization not possible" for those operations.

2. The one rule of the brief JSON Schema cannot state: `content` is 10–10,000 characters
   *after cleaning* (control and invisible formatting characters removed, whitespace runs
   folded to one) and holds at least one visible character (a letter, number or symbol that
   is not default-ignorable or a filler). The spec says so in the field's description; its
   minLength/maxLength count the raw text. A schema-valid body whose content fails the rule
   is refused with 422, which the positive-data check would report as a schema-valid request
   rejected. So positive cases whose content fails the rule are dropped before they are sent
   — the mirror of `sanitize::clean_text` and `sanitize::is_visible` below — and every other
   case, and every check, runs as usual. Negative cases are never dropped.
"""

import unicodedata

import schemathesis

schemathesis.serializer.alias("video/mp4", "application/octet-stream")

# src/sanitize.rs: is_line_break, char::is_whitespace (Unicode White_Space), is_invisible_format,
# is_default_ignorable, is_filler.
LINE_BREAKS = set("\n\r\x0b\x0c\x85\u2028\u2029")
WHITE_SPACE = set("\t\n\x0b\x0c\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000") | {
    chr(c) for c in range(0x2000, 0x200B)
}
INVISIBLE_FORMAT = [(0x202A, 0x202E), (0x2066, 0x2069), (0x200B, 0x200B), (0x2060, 0x2064), (0x206A, 0x206F), (0xFEFF, 0xFEFF)]
DEFAULT_IGNORABLE = [
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180F),
    (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
]
FILLERS = {0x2800, 0x3164, 0x115F, 0x1160, 0xFFA0}


def _within(c, ranges):
    return any(lo <= ord(c) <= hi for lo, hi in ranges)


def cleaned_length(text):
    """Characters left after cleaning: kept characters plus one per folded whitespace run
    between two of them."""
    count, pending, seen = 0, False, False
    for c in text:
        if c in LINE_BREAKS or c in WHITE_SPACE:
            pending = True
        elif unicodedata.category(c) == "Cc" or _within(c, INVISIBLE_FORMAT):
            continue
        else:
            if pending and seen:
                count += 1
            pending, seen = False, True
            count += 1
    return count


def has_visible(text):
    return any(
        unicodedata.category(c)[0] in "LNS" and not _within(c, DEFAULT_IGNORABLE) and ord(c) not in FILLERS
        for c in text
    )


def _content_limits(case):
    try:
        props = case.operation.schema.raw_schema["components"]["schemas"]["BriefRequest"]["properties"]
        return props["content"]["minLength"], props["content"]["maxLength"]
    except (AttributeError, KeyError, TypeError):
        return 10, 10_000


@schemathesis.hook
def filter_case(context, case):
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return True
    body = case.body
    if not isinstance(body, dict) or not isinstance(body.get("content"), str):
        return True
    low, high = _content_limits(case)
    content = body["content"]
    return has_visible(content) and low <= cleaned_length(content) <= high

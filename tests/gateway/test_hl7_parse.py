"""The intake's parse (gateway/hl7/message.py `_parse`: python-hl7's, its plan kept per set of delimiters)
builds exactly the message `hl7.parse` builds, whatever the delimiters, escapes and nesting."""

from __future__ import annotations

from typing import Any

import hl7
from hypothesis import given, settings
from hypothesis import strategies as st

from yingyun.gateway.hl7.message import _parse

MESSAGES = [
    "MSH|^~\\&|RIS|H|YY|YY|20261202||ORM^O01^ORM_O01|1|P|2.5.1|||AL|NE|CHN|UNICODE UTF-8\r"
    "PID|1||P1^^^H^MR~110105^^^CHN^NNCHN||张^三丰||19800101|M\rOBR|1|A&B&C|X\\F\\Y||||",
    "MSH|^~\\&|A|B|C|D|2026||ADT^A08|9|P|2.3\rPID|||X||\r\rEVN||",
    "MSH#$%*@|A|B\rPID#1##a$b%c$d@e@f#",  # other delimiters, sub-components, repetitions
    "MSH|^~\\&\rZZZ",
]


def shape(node: Any) -> Any:
    """Types, delimiters and values all the way down."""
    if isinstance(node, str):
        return node
    return (type(node).__name__, node.separator, node.esc, node.separators, [shape(x) for x in node])


def test_known_messages_parse_as_python_hl7_parses_them() -> None:
    for text in MESSAGES:
        assert shape(_parse(text)) == shape(hl7.parse(text))
        assert str(_parse(text)) == str(hl7.parse(text))


SEGMENT_TEXT = st.text(alphabet="AB1|^~\\&é张 ", max_size=40)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["PID", "OBR", "ORC", "ZZ1"]), SEGMENT_TEXT), max_size=6),
       st.sampled_from(["^~\\&", "^~\\", "^~", "$%*@"]))
def test_any_message_parses_as_python_hl7_parses_it(segments, encoding) -> None:
    field = "|" if encoding != "$%*@" else "#"
    text = "\r".join([f"MSH{field}{encoding}{field}A{field}B"] + [name + field + body for name, body in segments])
    assert shape(_parse(text)) == shape(hl7.parse(text))

"""JSON of any depth, read and written without recursion.

What people and apps send is held to JSON_MAX_DEPTH (journeyhub.json_rules), but a row stored
before that limit, or written by hand in SQL, may nest hundreds of levels. Python's json module
recurses once per level and raises RecursionError near 1000 levels, fewer the deeper the
caller's own stack (an admin page is ~150 frames down). These are the fallbacks that read and
write such a value whatever its depth, so every page that shows it still renders."""

import json
import re
from json.decoder import scanstring  # the C string scanner: strings do not nest

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"(-?(?:0|[1-9][0-9]*))(\.[0-9]+)?([eE][-+]?[0-9]+)?")
_LITERALS = (("true", True), ("false", False), ("null", None))
_CLOSING = {dict: "}", list: "]"}


def loads_deep(text: str):
    """``json.loads(text)`` for a text of any depth, with an explicit stack."""
    containers: list[dict | list] = []
    keys: list[str | None] = []  # the key each open object is waiting to fill
    pos = 0
    while True:
        value, pos = _value_or_open(text, _skip(text, pos), containers, keys)
        if value is _OPENED:
            continue
        while True:  # the value is complete: store it, then close what it completes
            if not containers:
                if _skip(text, pos) != len(text):
                    raise json.JSONDecodeError("Extra data", text, pos)
                return value
            parent = containers[-1]
            if isinstance(parent, dict):
                parent[keys[-1]] = value
            else:
                parent.append(value)
            pos = _skip(text, pos)
            char = text[pos:pos + 1]
            if char == ",":
                if isinstance(parent, dict):
                    keys[-1], pos = _key(text, _skip(text, pos + 1))
                else:
                    pos += 1
                break
            if char != _CLOSING[type(parent)]:
                raise json.JSONDecodeError("Expecting ',' delimiter", text, pos)
            value, pos = containers.pop(), pos + 1
            keys.pop()


_OPENED = object()


def _value_or_open(text: str, pos: int, containers: list, keys: list):
    """A scalar or an empty container at ``pos``, or _OPENED after pushing a new container."""
    char = text[pos:pos + 1]
    if char in ("{", "["):
        container = {} if char == "{" else []
        after = _skip(text, pos + 1)
        if text[after:after + 1] == _CLOSING[type(container)]:
            return container, after + 1
        containers.append(container)
        if char == "{":
            key, after = _key(text, after)
            keys.append(key)
        else:
            keys.append(None)
        return _OPENED, after
    if char == '"':
        return scanstring(text, pos + 1)
    number = _NUMBER.match(text, pos)
    if number:
        integer, fraction, exponent = number.groups()
        value = float(number.group()) if fraction or exponent else int(integer)
        return value, number.end()
    for word, value in _LITERALS:
        if text.startswith(word, pos):
            return value, pos + len(word)
    raise json.JSONDecodeError("Expecting value", text, pos)


def _key(text: str, pos: int) -> tuple[str, int]:
    if text[pos:pos + 1] != '"':
        raise json.JSONDecodeError("Expecting property name enclosed in double quotes", text, pos)
    key, pos = scanstring(text, pos + 1)
    pos = _skip(text, pos)
    if text[pos:pos + 1] != ":":
        raise json.JSONDecodeError("Expecting ':' delimiter", text, pos)
    return key, pos + 1


def _skip(text: str, pos: int) -> int:
    return _WHITESPACE.match(text, pos).end()


def dumps_deep(value, *, indent: int | None = None, separators: tuple[str, str] | None = None,
               ensure_ascii: bool = True, sort_keys: bool = False, default=None) -> str:
    """``json.dumps(value, ...)`` for a value of any depth, with an explicit stack; the same
    text json.dumps writes. ``default`` turns other objects into JSON values, as in json."""
    item_separator, key_separator = separators or ((",", ": ") if indent is not None
                                                   else (", ", ": "))
    parts: list[str] = []
    stack: list[tuple] = []  # (iterator of children, is an object, closing bracket)
    pending = value
    while True:
        if default is not None and not isinstance(pending, _JSON_TYPES):
            pending = default(pending)
            continue
        if isinstance(pending, dict | list | tuple) and pending:
            is_object = isinstance(pending, dict)
            parts.append("{" if is_object else "[")
            items = sorted(pending.items()) if is_object and sort_keys else (
                pending.items() if is_object else pending)
            children = iter(items)
            stack.append((children, is_object, "}" if is_object else "]", [True]))
        else:
            parts.append(json.dumps(pending, ensure_ascii=ensure_ascii))
        while stack:
            children, is_object, closing, first = stack[-1]
            child = next(children, _END)
            if child is _END:
                stack.pop()
                parts.append(_newline(indent, len(stack)) + closing)
                continue
            parts.append(("" if first[0] else item_separator) + _newline(indent, len(stack)))
            first[0] = False
            if is_object:
                key, pending = child
                parts.append(json.dumps(_key_text(key), ensure_ascii=ensure_ascii)
                             + key_separator)
            else:
                pending = child
            break
        else:
            return "".join(parts)


_END = object()
_JSON_TYPES = (dict, list, tuple, str, int, float, bool, type(None))


def _newline(indent: int | None, level: int) -> str:
    return "" if indent is None else "\n" + " " * (indent * level)


def _key_text(key) -> str:
    """As json.dumps writes keys: strings as they are, True/None/numbers as their JSON text."""
    return key if isinstance(key, str) else json.dumps(key)


class DeepSafeEncoderMixin:
    """For a json.JSONEncoder subclass: a value too deep for the C encoder is written by
    dumps_deep instead of raising RecursionError."""

    def encode(self, o) -> str:
        try:
            return super().encode(o)
        except RecursionError:
            return dumps_deep(o, indent=self.indent, ensure_ascii=self.ensure_ascii,
                              separators=(self.item_separator, self.key_separator),
                              sort_keys=self.sort_keys, default=self.default)


class DeepSafeEncoder(DeepSafeEncoderMixin, json.JSONEncoder):
    pass


class DeepSafeDecoder(json.JSONDecoder):
    """json.loads(text, cls=DeepSafeDecoder): a text too deep for the C scanner is read by
    loads_deep instead of raising RecursionError."""

    def decode(self, s, *args, **kwargs):
        try:
            return super().decode(s, *args, **kwargs)
        except RecursionError:
            return loads_deep(s)

"""Byte-level machines that say which continuations keep a reply well formed: a JSON object, fixed text, a choice.

Constrained decoding offers a machine the bytes of each candidate token; a token is allowed when the machine
accepts all of them. Each machine also knows the shortest bytes that complete it (``closing``), so the decoder can
stop opening new structures when the token budget runs short and the reply still ends well formed.

Machines work on bytes, not characters, because byte-level tokens may split a character; JSON's structure is
ASCII, and any byte from 0x20 up is allowed inside a string (the decoded text is checked by ``json.loads`` later).
"""

from __future__ import annotations

from typing import Protocol

_WHITESPACE = frozenset(b" \t\n\r")
_HEX = frozenset(b"0123456789abcdefABCDEF")
_DIGITS = frozenset(b"0123456789")
_ESCAPES = frozenset(b'"\\/bfnrt')
_WORDS = {ord("t"): b"rue", ord("f"): b"alse", ord("n"): b"ull"}
# a number may stop after these states; the others need one more digit ("-", "1.", "1e", "1e+")
_NUMBER_ENDS = frozenset({"zero", "int", "frac", "exp_int"})
_NUMBER_FIX = {"sign": b"0", "dot": b"0", "exp": b"0", "exp_sign": b"0"}

# JSON machine states
_START, _FIRST_KEY, _KEY, _COLON, _VALUE, _FIRST_ITEM, _AFTER = range(7)
_STRING, _ESCAPE, _UNICODE, _NUMBER, _WORD = range(7, 12)


class Machine(Protocol):
    """A recogniser fed one byte at a time."""

    @property
    def done(self) -> bool:
        """The bytes so far form a complete output; nothing more may follow."""
        ...

    def feed(self, byte: int) -> bool:
        """Consume ``byte``; False (and an undefined state) if it cannot follow what came before."""
        ...

    def closing(self) -> bytes:
        """The shortest bytes that make the output complete."""
        ...

    def copy(self) -> Machine: ...


def feed_all(machine: Machine, data: bytes) -> bool:
    """Feed every byte of ``data``; False as soon as one is refused."""
    return all(machine.feed(b) for b in data)


class JsonObject:
    """A JSON object, as ``json.loads`` reads it; no whitespace before or after it.

    Runs of whitespace inside are capped (``max_spaces``) and nesting is limited (``max_depth``), so a model that
    likes blank space or brackets cannot spend the whole budget on them.
    """

    __slots__ = ("state", "stack", "key", "left", "number", "word", "spaces", "max_spaces", "max_depth")

    def __init__(self, max_spaces: int = 8, max_depth: int = 32):
        self.state = _START
        self.stack = ""  # "o" for an open object, "a" for an open array
        self.key = False  # the string being read is an object key
        self.left = 0  # hex digits still due in a \\u escape
        self.number = ""
        self.word = b""
        self.spaces = 0
        self.max_spaces, self.max_depth = max_spaces, max_depth

    @property
    def done(self) -> bool:
        return self.state == _AFTER and not self.stack

    def copy(self) -> JsonObject:
        clone = JsonObject.__new__(JsonObject)  # every field is immutable: a shallow copy is a full one
        for name in JsonObject.__slots__:
            setattr(clone, name, getattr(self, name))
        return clone

    def feed(self, b: int) -> bool:
        state = self.state
        if state == _STRING:
            if b == 0x22:
                self.state = _COLON if self.key else _AFTER
                return True
            if b == 0x5C:
                self.state = _ESCAPE
                return True
            return b >= 0x20
        if state == _ESCAPE:
            if b in _ESCAPES:
                self.state = _STRING
                return True
            if b == ord("u"):
                self.state, self.left = _UNICODE, 4
                return True
            return False
        if state == _UNICODE:
            if b not in _HEX:
                return False
            self.left -= 1
            if not self.left:
                self.state = _STRING
            return True
        if state == _NUMBER:
            following = _number_step(self.number, b)
            if following:
                self.number = following
                return True
            if self.number not in _NUMBER_ENDS:
                return False
            self.state = _AFTER  # the number ended; this byte belongs to what follows it
            return self.feed(b)
        if state == _WORD:
            if b != self.word[0]:
                return False
            self.word = self.word[1:]
            if not self.word:
                self.state = _AFTER
            return True
        if b in _WHITESPACE:
            if state == _START or self.done or self.spaces >= self.max_spaces:
                return False
            self.spaces += 1
            return True
        self.spaces = 0
        if state == _START:
            return b == ord("{") and self._open("o", _FIRST_KEY)
        if state in (_FIRST_KEY, _KEY):
            if b == 0x22:
                self.state, self.key = _STRING, True
                return True
            return state == _FIRST_KEY and b == ord("}") and self._close()
        if state == _COLON:
            if b != ord(":"):
                return False
            self.state = _VALUE
            return True
        if state == _FIRST_ITEM and b == ord("]"):
            return self._close()
        if state in (_VALUE, _FIRST_ITEM):
            return self._value(b)
        # _AFTER: a comma or the end of the innermost container
        if not self.stack:
            return False
        top = self.stack[-1]
        if b == ord(","):
            self.state = _KEY if top == "o" else _VALUE
            return True
        if (b == ord("}") and top == "o") or (b == ord("]") and top == "a"):
            return self._close()
        return False

    def _open(self, kind: str, state: int) -> bool:
        if len(self.stack) >= self.max_depth:
            return False
        self.stack += kind
        self.state = state
        return True

    def _close(self) -> bool:
        self.stack = self.stack[:-1]
        self.state = _AFTER
        return True

    def _value(self, b: int) -> bool:
        if b == 0x22:
            self.state, self.key = _STRING, False
            return True
        if b == ord("{"):
            return self._open("o", _FIRST_KEY)
        if b == ord("["):
            return self._open("a", _FIRST_ITEM)
        if b in _WORDS:
            self.state, self.word = _WORD, _WORDS[b]
            return True
        first = _number_step("", b)
        if first:
            self.state, self.number = _NUMBER, first
            return True
        return False

    def closing(self) -> bytes:
        out = b""
        state, stack = self.state, self.stack
        if state in (_STRING, _ESCAPE, _UNICODE):
            out += b"n" if state == _ESCAPE else b"0" * self.left if state == _UNICODE else b""
            out += b'"'
            state = _COLON if self.key else _AFTER
        elif state == _NUMBER:
            out += _NUMBER_FIX.get(self.number, b"")
            state = _AFTER
        elif state == _WORD:
            out += self.word
            state = _AFTER
        if state == _START:
            return b"{}"
        if state in (_COLON, _KEY, _VALUE):  # a key still needs a value; an empty key is a key
            out += {_COLON: b":0", _KEY: b'"":0', _VALUE: b"0"}[state]
        elif state in (_FIRST_KEY, _FIRST_ITEM):
            out += b"}" if state == _FIRST_KEY else b"]"
            stack = stack[:-1]
        return out + "".join("}" if kind == "o" else "]" for kind in reversed(stack)).encode()


def _number_step(state: str, b: int) -> str:
    """The number state after ``b`` (JSON's grammar: -?(0|[1-9]d*)(.d+)?([eE][+-]?d+)?), or "" if it cannot go on."""
    digit = b in _DIGITS
    if state == "":
        return "sign" if b == ord("-") else "zero" if b == ord("0") else "int" if digit else ""
    if state == "sign":
        return "zero" if b == ord("0") else "int" if digit else ""
    if state in ("zero", "int"):
        if digit and state == "int":
            return "int"
        return "dot" if b == ord(".") else "exp" if b in b"eE" else ""
    if state in ("dot", "frac"):
        if digit:
            return "frac"
        return "exp" if state == "frac" and b in b"eE" else ""
    if state == "exp":
        return "exp_sign" if b in b"+-" else "exp_int" if digit else ""
    if state in ("exp_sign", "exp_int"):
        return "exp_int" if digit else ""
    return ""


class Literal:
    """Exactly the bytes given."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    @property
    def done(self) -> bool:
        return self.pos == len(self.data)

    def feed(self, b: int) -> bool:
        if self.done or self.data[self.pos] != b:
            return False
        self.pos += 1
        return True

    def closing(self) -> bytes:
        return self.data[self.pos :]

    def copy(self) -> Literal:
        clone = Literal(self.data)
        clone.pos = self.pos
        return clone


class Choice:
    """One of several byte strings, none a prefix of another (e.g. JSON strings, whose closing quote ends them)."""

    __slots__ = ("options", "read")

    def __init__(self, options: list[bytes]):
        if not options:
            raise ValueError("a choice needs at least one option")
        self.options, self.read = tuple(options), b""

    @property
    def done(self) -> bool:
        return self.read in self.options

    def feed(self, b: int) -> bool:
        if self.done:
            return False
        read = self.read + bytes([b])
        if not any(option.startswith(read) for option in self.options):
            return False
        self.read = read
        return True

    def closing(self) -> bytes:
        return min((o[len(self.read) :] for o in self.options if o.startswith(self.read)), key=len)

    def copy(self) -> Choice:
        clone = Choice.__new__(Choice)
        clone.options, clone.read = self.options, self.read
        return clone


class Sequence:
    """Its parts one after another; a part that is complete hands the next byte to the following part."""

    __slots__ = ("parts", "index")

    def __init__(self, parts: list[Machine]):
        self.parts, self.index = list(parts), 0
        self._skip_done()

    @property
    def done(self) -> bool:
        return self.index == len(self.parts)

    def feed(self, b: int) -> bool:
        if self.done or not self.parts[self.index].feed(b):
            return False
        self._skip_done()
        return True

    def _skip_done(self) -> None:
        while self.index < len(self.parts) and self.parts[self.index].done:
            self.index += 1

    def closing(self) -> bytes:
        return b"".join(part.closing() for part in self.parts[self.index :])

    def copy(self) -> Sequence:
        clone = Sequence.__new__(Sequence)
        clone.parts = [part if i < self.index else part.copy() for i, part in enumerate(self.parts)]
        clone.index = self.index
        return clone

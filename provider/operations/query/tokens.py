"""The tokenizer shared by WQL and DMTF:CQL."""
from __future__ import annotations

from dataclasses import dataclass

import pywbem

KEYWORDS = frozenset({"SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IS", "NULL", "ISA",
                      "LIKE", "TRUE", "FALSE", "AS"})
OPERATORS = ("<>", "!=", "<=", ">=", "=", "<", ">", "(", ")", ",", "*", ".", "-", "+")


class QueryError(pywbem.CIMError):
    """A query that cannot be parsed or does not fit the class: CIM_ERR_INVALID_QUERY."""

    def __init__(self, message: str):
        super().__init__(pywbem.CIM_ERR_INVALID_QUERY, message)


@dataclass(frozen=True)
class Token:
    kind: str          # 'kw', 'ident', 'string', 'number', 'op', 'end'
    value: object
    pos: int

    def is_kw(self, *words: str) -> bool:
        return self.kind == "kw" and self.value in words

    def is_op(self, *ops: str) -> bool:
        return self.kind == "op" and self.value in ops


def _ident_char(ch: str, first: bool) -> bool:
    if ch == "_" or ch.isalpha():
        return True
    return not first and ch.isdigit()


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        start = i
        if ch in "'\"":
            quote, i, buf = ch, i + 1, []
            while True:
                if i >= n:
                    raise QueryError(f"unterminated string starting at position {start + 1}")
                c = text[i]
                if c == "\\" and i + 1 < n and text[i + 1] in "'\"\\":
                    # \' \" \\ stand for the character; any other backslash stays, so a
                    # LIKE pattern keeps its escapes.
                    buf.append(text[i + 1])
                    i += 2
                elif c == quote:
                    if i + 1 < n and text[i + 1] == quote:      # doubled quote
                        buf.append(quote)
                        i += 2
                    else:
                        i += 1
                        break
                else:
                    buf.append(c)
                    i += 1
            tokens.append(Token("string", "".join(buf), start))
            continue
        if ch.isdigit() or (ch == "." and i + 1 < n and text[i + 1].isdigit()):
            if text.startswith(("0x", "0X"), i):
                j = i + 2
                while j < n and text[j] in "0123456789abcdefABCDEF":
                    j += 1
                if j == i + 2:
                    raise QueryError(f"bad hexadecimal number at position {start + 1}")
                tokens.append(Token("number", int(text[i + 2:j], 16), start))
                i = j
            else:
                j = i
                while j < n and (text[j].isdigit() or text[j] == "."):
                    j += 1
                if j < n and text[j] in "eE":
                    k = j + 1
                    if k < n and text[k] in "+-":
                        k += 1
                    if k < n and text[k].isdigit():
                        j = k
                        while j < n and text[j].isdigit():
                            j += 1
                literal = text[i:j]
                try:
                    value = float(literal) if any(c in literal for c in ".eE") else int(literal)
                except ValueError:
                    raise QueryError(f"bad number {literal!r} at position {start + 1}") from None
                tokens.append(Token("number", value, start))
                i = j
            if i < n and _ident_char(text[i], True):
                raise QueryError(f"bad number at position {start + 1}")
            continue
        if _ident_char(ch, True):
            j = i + 1
            while j < n and _ident_char(text[j], False):
                j += 1
            word = text[i:j]
            if word.upper() in KEYWORDS:
                tokens.append(Token("kw", word.upper(), start))
            else:
                tokens.append(Token("ident", word, start))
            i = j
            continue
        for op in OPERATORS:
            if text.startswith(op, i):
                tokens.append(Token("op", op, start))
                i += len(op)
                break
        else:
            raise QueryError(f"unexpected character {ch!r} at position {start + 1}")
    tokens.append(Token("end", None, n))
    return tokens

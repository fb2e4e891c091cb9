"""Recursive-descent parser for the SELECT statements of WQL and DMTF:CQL.

    query      := SELECT selects FROM ident [[AS] ident] [WHERE expr]
    selects    := '*' | select (',' select)*
    select     := ident ['.' (ident | '*')]
    expr       := term (OR term)*
    term       := factor (AND factor)*
    factor     := NOT factor | '(' expr ')' | predicate
    predicate  := operand (cmp operand | IS [NOT] NULL | ISA name | [NOT] LIKE string)
    operand    := ident ['.' ident] | string | ['-'|'+'] number | TRUE | FALSE | NULL
"""
from __future__ import annotations

from dataclasses import dataclass

from provider.operations.query.tokens import QueryError, Token, tokenize

COMPARISONS = ("=", "<>", "!=", "<", "<=", ">", ">=")


@dataclass(frozen=True)
class Prop:
    name: str
    qualifier: str | None = None      # the class or alias before the dot


@dataclass(frozen=True)
class Literal:
    value: object                     # str, int, float, bool or None (NULL)


@dataclass(frozen=True)
class Compare:
    op: str
    left: object
    right: object


@dataclass(frozen=True)
class IsNull:
    operand: object
    negated: bool


@dataclass(frozen=True)
class Isa:
    operand: Prop
    classname: str


@dataclass(frozen=True)
class Like:
    operand: object
    pattern: str
    negated: bool


@dataclass(frozen=True)
class Not:
    expr: object


@dataclass(frozen=True)
class And:
    items: tuple


@dataclass(frozen=True)
class Or:
    items: tuple


@dataclass(frozen=True)
class SelectItem:
    name: str | None                  # None means '*'
    qualifier: str | None = None


@dataclass(frozen=True)
class Statement:
    language: str                     # 'WQL' or 'DMTF:CQL'
    selects: tuple[SelectItem, ...]
    classname: str
    alias: str | None
    where: object | None
    text: str


class _Parser:
    def __init__(self, text: str, language: str):
        self.text = text
        self.language = language
        self.tokens = tokenize(text)
        self.i = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind != "end":
            self.i += 1
        return tok

    def fail(self, what: str) -> QueryError:
        tok = self.tok
        found = "end of query" if tok.kind == "end" else repr(str(tok.value))
        return QueryError(f"{what} expected at position {tok.pos + 1}, found {found}")

    def expect_kw(self, word: str) -> None:
        if not self.tok.is_kw(word):
            raise self.fail(word)
        self.advance()

    def ident(self, what: str) -> str:
        if self.tok.kind != "ident":
            raise self.fail(what)
        return self.advance().value

    def statement(self) -> Statement:
        self.expect_kw("SELECT")
        selects = self.selects()
        self.expect_kw("FROM")
        classname = self.ident("class name")
        alias = None
        if self.tok.is_kw("AS"):
            self.advance()
            alias = self.ident("alias")
        elif self.tok.kind == "ident":
            alias = self.advance().value
        if self.tok.is_op(","):
            raise QueryError("a query may select from one class only")
        where = None
        if self.tok.is_kw("WHERE"):
            self.advance()
            where = self.expr()
        if self.tok.kind != "end":
            raise self.fail("end of query")
        return Statement(self.language, tuple(selects), classname, alias, where, self.text)

    def selects(self) -> list[SelectItem]:
        if self.tok.is_op("*"):
            self.advance()
            return [SelectItem(None)]
        items = [self.select()]
        while self.tok.is_op(","):
            self.advance()
            items.append(self.select())
        return items

    def select(self) -> SelectItem:
        first = self.ident("property name or '*'")
        if self.tok.is_op("."):
            self.advance()
            if self.tok.is_op("*"):
                self.advance()
                return SelectItem(None, first)
            return SelectItem(self.ident("property name"), first)
        return SelectItem(first)

    def expr(self):
        items = [self.term()]
        while self.tok.is_kw("OR"):
            self.advance()
            items.append(self.term())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def term(self):
        items = [self.factor()]
        while self.tok.is_kw("AND"):
            self.advance()
            items.append(self.factor())
        return items[0] if len(items) == 1 else And(tuple(items))

    def factor(self):
        if self.tok.is_kw("NOT"):
            self.advance()
            return Not(self.factor())
        if self.tok.is_op("("):
            self.advance()
            inner = self.expr()
            if not self.tok.is_op(")"):
                raise self.fail("')'")
            self.advance()
            return inner
        return self.predicate()

    def predicate(self):
        left = self.operand()
        tok = self.tok
        if tok.kind == "op" and tok.value in COMPARISONS:
            self.advance()
            op = "<>" if tok.value == "!=" else tok.value
            return Compare(op, left, self.operand())
        if tok.is_kw("IS"):
            self.advance()
            negated = False
            if self.tok.is_kw("NOT"):
                self.advance()
                negated = True
            self.expect_kw("NULL")
            return IsNull(left, negated)
        if tok.is_kw("ISA"):
            self.advance()
            if not isinstance(left, Prop):
                raise QueryError("ISA needs a class alias or a property on its left")
            if self.tok.kind in ("ident", "string"):
                return Isa(left, self.advance().value)
            raise self.fail("class name")
        negated = False
        if tok.is_kw("NOT"):
            self.advance()
            negated = True
            if not self.tok.is_kw("LIKE"):
                raise self.fail("LIKE")
        if self.tok.is_kw("LIKE"):
            self.advance()
            if self.tok.kind != "string":
                raise self.fail("pattern string")
            return Like(left, self.advance().value, negated)
        raise self.fail("comparison operator, IS, ISA or LIKE")

    def operand(self):
        tok = self.tok
        if tok.kind == "ident":
            self.advance()
            if self.tok.is_op("."):
                self.advance()
                return Prop(self.ident("property name"), tok.value)
            return Prop(tok.value)
        if tok.kind == "string":
            self.advance()
            return Literal(tok.value)
        if tok.kind == "number":
            self.advance()
            return Literal(tok.value)
        if tok.is_op("-", "+"):
            self.advance()
            if self.tok.kind != "number":
                raise self.fail("number")
            value = self.advance().value
            return Literal(-value if tok.value == "-" else value)
        if tok.is_kw("TRUE", "FALSE"):
            self.advance()
            return Literal(tok.value == "TRUE")
        if tok.is_kw("NULL"):
            self.advance()
            return Literal(None)
        raise self.fail("property name or literal")


def parse(text: str, language: str) -> Statement:
    """Parse `text` in `language` ('WQL' or 'DMTF:CQL'); raises QueryError."""
    if not isinstance(text, str) or not text.strip():
        raise QueryError("empty query")
    return _Parser(text, language).statement()

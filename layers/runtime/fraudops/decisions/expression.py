"""The rule language of a decision policy: a small expression language over a transaction's fields and
the model's score, parsed into a tree and type-checked before a policy can be published. Never ``eval``.

Grammar (keywords are lower case; strings in single or double quotes)::

    expr       := or
    or         := and ("or" and)*
    and        := not ("and" not)*
    not        := "not" not | comparison
    comparison := sum (("==" | "!=" | "<" | "<=" | ">" | ">=") sum | ["not"] "in" "[" literal ("," literal)* "]")?
    sum        := product (("+" | "-") product)*
    product    := unary (("*" | "/") unary)*
    unary      := "-" unary | atom
    atom       := NUMBER | STRING | "true" | "false" | NAME | "(" expr ")"

Names are the request's fields (``FIELD_TYPES``), the entity aggregates (``orig_count_1h``...) and ``score``
(the model's probability). Types are
checked when the policy is validated: numbers compare with numbers, strings only with ``==``, ``!=`` and
``in``; a rule must be a condition. At run time a missing account name compares unequal to everything,
and arithmetic follows IEEE floats (``amount / oldbalanceOrg`` with a zero balance is infinite, and a
comparison with NaN is false), so evaluating a valid rule never raises.

Each node evaluates one row (``row``: Python scalars, the request path) or many (``columns``: numpy
arrays, batches), with the same result.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Final, Literal

import numpy as np

from fraudops.aggregates.definitions import AGGREGATE_NAMES
from fraudops.core.errors import FraudopsError
from fraudops.core.schema import TRANSACTION_TYPES

Kind = Literal["number", "string", "bool"]

# What a rule may read: the request's fields and the score.
FIELD_TYPES: Final[dict[str, Kind]] = {
    "step": "number",
    "type": "string",
    "amount": "number",
    "oldbalanceOrg": "number",
    "newbalanceOrig": "number",
    "oldbalanceDest": "number",
    "newbalanceDest": "number",
    "nameOrig": "string",
    "nameDest": "string",
    "score": "number",
    # What the account did before (fraudops.aggregates), e.g. ``orig_count_1h > 5``; NaN when unknown.
    **dict.fromkeys(AGGREGATE_NAMES, "number"),
}
MAX_EXPRESSION_LENGTH: Final = 2_000
MAX_DEPTH: Final = 40
MAX_LIST_ITEMS: Final = 1_000


class ExpressionError(FraudopsError, ValueError):
    """A rule does not parse or does not type-check; the message points at the place."""


_TOKEN = re.compile(
    r"\s*(?:(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)|(?P<string>'[^'\\]*'|\"[^\"\\]*\")"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>==|!=|<=|>=|[<>()\[\],+\-*/]))"
)
_KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false"})


@dataclass(frozen=True)
class _Token:
    kind: str  # number | string | name | op | keyword | end
    text: str
    position: int


def _tokens(source: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(source):
        if source[position:].strip() == "":
            break
        match = _TOKEN.match(source, position)
        if match is None or match.end() == position:
            at = position + len(source[position:]) - len(source[position:].lstrip())
            raise ExpressionError(f"unexpected character {source[at]!r} at position {at}")
        kind = str(match.lastgroup)
        text = match.group(kind)
        start = match.start(kind)
        if kind == "name" and text in _KEYWORDS:
            kind = "keyword"
        tokens.append(_Token(kind, text, start))
        position = match.end()
    tokens.append(_Token("end", "", len(source)))
    return tokens


# --- the tree ------------------------------------------------------------------------------------------


class Node:
    kind: Kind

    def row(self, values: Mapping[str, Any]) -> Any:
        raise NotImplementedError

    def compiled(self) -> Callable[[Mapping[str, Any]], Any]:
        """``row`` as one closure (no method lookups per node): what ``/predict`` evaluates. Nodes a
        policy rarely has keep ``row`` itself."""
        return self.row

    def columns(self, values: Mapping[str, np.ndarray], n: int) -> Any:
        raise NotImplementedError

    def names(self) -> set[str]:
        return set()


@dataclass(frozen=True)
class Literal_(Node):
    value: float | str | bool
    kind: Kind

    def row(self, values: Mapping[str, Any]) -> Any:
        return self.value

    def compiled(self) -> Callable[[Mapping[str, Any]], Any]:
        value = self.value
        return lambda values: value

    def columns(self, values: Mapping[str, np.ndarray], n: int) -> Any:
        return self.value


@dataclass(frozen=True)
class Name(Node):
    name: str
    kind: Kind

    def row(self, values: Mapping[str, Any]) -> Any:
        return values.get(self.name)

    def compiled(self) -> Callable[[Mapping[str, Any]], Any]:
        name = self.name
        return lambda values: values.get(name)

    def columns(self, values: Mapping[str, np.ndarray], n: int) -> Any:
        return values[self.name]

    def names(self) -> set[str]:
        return {self.name}


@dataclass(frozen=True)
class Negate(Node):
    operand: Node
    kind: Kind = "number"

    def row(self, values: Mapping[str, Any]) -> Any:
        return -float(self.operand.row(values))

    def columns(self, values: Mapping[str, np.ndarray], n: int) -> Any:
        return -np.asarray(self.operand.columns(values, n), dtype=np.float64)

    def names(self) -> set[str]:
        return self.operand.names()


def _divide(a: float, b: float) -> float:
    """IEEE division (Python raises on a zero divisor; a rule must not)."""
    if b == 0:
        return math.nan if a == 0 or math.isnan(a) else math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


_ARITHMETIC: Final[dict[str, Callable[[float, float], float]]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": _divide,
}


@dataclass(frozen=True)
class Arithmetic(Node):
    op: str
    left: Node
    right: Node
    kind: Kind = "number"

    def row(self, values: Mapping[str, Any]) -> Any:
        return _ARITHMETIC[self.op](float(self.left.row(values)), float(self.right.row(values)))

    def columns(self, values: Mapping[str, np.ndarray], n: int) -> Any:
        left = np.asarray(self.left.columns(values, n), dtype=np.float64)
        right = np.asarray(self.right.columns(values, n), dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide}[self.op](left, right)

    def names(self) -> set[str]:
        return self.left.names() | self.right.names()


_COMPARE: Final[dict[str, Callable[[Any, Any], Any]]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@dataclass(frozen=True)
class Compare(Node):
    op: str
    left: Node
    right: Node
    kind: Kind = "bool"

    def row(self, values: Mapping[str, Any]) -> Any:
        left, right = self.left.row(values), self.right.row(values)
        if left is None or right is None:  # a missing account name equals nothing
            return self.op == "!="
        return bool(_COMPARE[self.op](left, right))

    def compiled(self) -> Callable[[Mapping[str, Any]], Any]:
        compare, missing = _COMPARE[self.op], self.op == "!="
        if isinstance(self.left, Name) and isinstance(self.right, Literal_):  # the usual form: field op value
            name, constant = self.left.name, self.right.value

            def field_against_constant(values: Mapping[str, Any]) -> bool:
                value = values.get(name)
                return missing if value is None else bool(compare(value, constant))

            return field_against_constant
        left, right = self.left.compiled(), self.right.compiled()

        def both_sides(values: Mapping[str, Any]) -> bool:
            a, b = left(values), right(values)
            return missing if a is None or b is None else bool(compare(a, b))

        return both_sides

    def columns(self, values: Mapping[str, np.ndarray], n: int) -> Any:
        left, right = self.left.columns(values, n), self.right.columns(values, n)
        result = np.asarray(_COMPARE[self.op](left, right), dtype=bool)
        return np.broadcast_to(result, (n,))

    def names(self) -> set[str]:
        return self.left.names() | self.right.names()


@dataclass(frozen=True)
class Member(Node):
    operand: Node
    options: frozenset[Any]
    negated: bool
    kind: Kind = "bool"

    def row(self, values: Mapping[str, Any]) -> Any:
        value = self.operand.row(values)
        if value is None:
            return self.negated
        return (value in self.options) != self.negated

    def compiled(self) -> Callable[[Mapping[str, Any]], Any]:
        operand, options, negated = self.operand.compiled(), self.options, self.negated

        def member(values: Mapping[str, Any]) -> bool:
            value = operand(values)
            return negated if value is None else (value in options) != negated

        return member

    def columns(self, values: Mapping[str, np.ndarray], n: int) -> Any:
        value = np.asarray(self.operand.columns(values, n))
        if value.dtype == object:  # names with missing values: set lookups
            found = np.fromiter((v in self.options for v in value), dtype=bool, count=len(value))
        else:
            found = np.isin(value, np.asarray(sorted(self.options, key=str)))
        return np.broadcast_to(found != self.negated, (n,))

    def names(self) -> set[str]:
        return self.operand.names()


@dataclass(frozen=True)
class Logical(Node):
    op: Literal["and", "or"]
    operands: tuple[Node, ...]
    kind: Kind = "bool"

    def row(self, values: Mapping[str, Any]) -> Any:
        if self.op == "and":
            return all(operand.row(values) for operand in self.operands)
        return any(operand.row(values) for operand in self.operands)

    def compiled(self) -> Callable[[Mapping[str, Any]], Any]:
        operands = tuple(operand.compiled() for operand in self.operands)
        if self.op == "and":

            def every(values: Mapping[str, Any]) -> bool:
                for operand in operands:  # noqa: SIM110 (a generator for all() costs ~0.5 us per rule)
                    if not operand(values):
                        return False
                return True

            return every

        def some(values: Mapping[str, Any]) -> bool:
            for operand in operands:  # noqa: SIM110
                if operand(values):
                    return True
            return False

        return some

    def columns(self, values: Mapping[str, np.ndarray], n: int) -> Any:
        combine = np.logical_and if self.op == "and" else np.logical_or
        result = np.asarray(self.operands[0].columns(values, n), dtype=bool)
        for operand in self.operands[1:]:
            result = combine(result, operand.columns(values, n))
        return np.broadcast_to(result, (n,))

    def names(self) -> set[str]:
        return set().union(*(operand.names() for operand in self.operands))


@dataclass(frozen=True)
class Not(Node):
    operand: Node
    kind: Kind = "bool"

    def row(self, values: Mapping[str, Any]) -> Any:
        return not self.operand.row(values)

    def compiled(self) -> Callable[[Mapping[str, Any]], Any]:
        operand = self.operand.compiled()
        return lambda values: not operand(values)

    def columns(self, values: Mapping[str, np.ndarray], n: int) -> Any:
        return np.broadcast_to(np.logical_not(self.operand.columns(values, n)), (n,))

    def names(self) -> set[str]:
        return self.operand.names()


# --- the parser ----------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = _tokens(source)
        self.index = 0
        self.depth = 0

    @property
    def current(self) -> _Token:
        return self.tokens[self.index]

    def _error(self, message: str, token: _Token | None = None) -> ExpressionError:
        at = (token or self.current).position
        return ExpressionError(f"{message} at position {at}")

    def _take(self) -> _Token:
        token = self.current
        self.index += 1
        return token

    def _is(self, kind: str, *texts: str) -> bool:
        return self.current.kind == kind and (not texts or self.current.text in texts)

    def _expect(self, kind: str, text: str) -> None:
        if not self._is(kind, text):
            found = self.current.text or "the end"
            raise self._error(f"expected {text!r}, found {found!r}")
        self.index += 1

    def _enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self._error(f"expression nested deeper than {MAX_DEPTH} levels")

    def parse(self) -> Node:
        node = self._or()
        if not self._is("end"):
            raise self._error(f"unexpected {self.current.text!r}")
        return node

    def _or(self) -> Node:
        operands = [self._and()]
        while self._is("keyword", "or"):
            token = self._take()
            operands.append(self._and())
            _require(operands[-1], "bool", "'or' joins conditions", token)
        if len(operands) == 1:
            return operands[0]
        _require(operands[0], "bool", "'or' joins conditions", self.tokens[0])
        return Logical("or", tuple(operands))

    def _and(self) -> Node:
        operands = [self._not()]
        while self._is("keyword", "and"):
            token = self._take()
            operands.append(self._not())
            _require(operands[-1], "bool", "'and' joins conditions", token)
        if len(operands) == 1:
            return operands[0]
        _require(operands[0], "bool", "'and' joins conditions", self.tokens[0])
        return Logical("and", tuple(operands))

    def _not(self) -> Node:
        if self._is("keyword", "not"):
            token = self._take()
            self._enter()
            operand = self._not()
            self.depth -= 1
            _require(operand, "bool", "'not' takes a condition", token)
            return Not(operand)
        return self._comparison()

    def _comparison(self) -> Node:
        left = self._sum()
        if self._is("op", *_COMPARE):
            token = self._take()
            right = self._sum()
            if left.kind != right.kind:
                raise self._error(f"{token.text!r} compares a {left.kind} with a {right.kind}", token)
            if left.kind == "bool" or (left.kind == "string" and token.text not in ("==", "!=")):
                raise self._error(f"{token.text!r} cannot compare {left.kind}s", token)
            _check_type_values(left, right, token, self)
            return Compare(token.text, left, right)
        negated = False
        if self._is("keyword", "not") and self.tokens[self.index + 1].text == "in":
            self._take()
            negated = True
        if self._is("keyword", "in"):
            token = self._take()
            options = self._list(left, token)
            return Member(left, options, negated)
        if negated:
            raise self._error("expected 'in' after 'not'")
        return left

    def _list(self, operand: Node, token: _Token) -> frozenset[Any]:
        if operand.kind == "bool":
            raise self._error("'in' needs a number or a string on its left", token)
        self._expect("op", "[")
        items: list[Any] = []
        while True:
            literal = self._atom()
            if not isinstance(literal, Literal_) or literal.kind != operand.kind:
                raise self._error(f"the list of 'in' holds {operand.kind} literals only", token)
            items.append(literal.value)
            if len(items) > MAX_LIST_ITEMS:
                raise self._error(f"a list holds at most {MAX_LIST_ITEMS} items", token)
            if self._is("op", "]"):
                self._take()
                break
            self._expect("op", ",")
        _check_type_values(operand, Literal_(items[0], operand.kind), token, self, items)
        return frozenset(items)

    def _sum(self) -> Node:
        left = self._product()
        while self._is("op", "+", "-"):
            token = self._take()
            right = self._product()
            left = _arithmetic(token, left, right, self)
        return left

    def _product(self) -> Node:
        left = self._unary()
        while self._is("op", "*", "/"):
            token = self._take()
            right = self._unary()
            left = _arithmetic(token, left, right, self)
        return left

    def _unary(self) -> Node:
        if self._is("op", "-"):
            token = self._take()
            self._enter()
            operand = self._unary()
            self.depth -= 1
            if operand.kind != "number":
                raise self._error("'-' takes a number", token)
            if isinstance(operand, Literal_):
                return Literal_(-float(operand.value), "number")
            return Negate(operand)
        return self._atom()

    def _atom(self) -> Node:
        token = self.current
        if token.kind == "number":
            self._take()
            value = float(token.text)
            if not math.isfinite(value):
                raise self._error(f"number {token.text} is out of range", token)
            return Literal_(value, "number")
        if token.kind == "string":
            self._take()
            return Literal_(token.text[1:-1], "string")
        if token.kind == "keyword" and token.text in ("true", "false"):
            self._take()
            return Literal_(token.text == "true", "bool")
        if token.kind == "name":
            self._take()
            if token.text not in FIELD_TYPES:
                known = ", ".join(FIELD_TYPES)
                raise self._error(f"unknown name {token.text!r} (a rule reads: {known})", token)
            return Name(token.text, FIELD_TYPES[token.text])
        if self._is("op", "("):
            self._take()
            self._enter()
            node = self._or()
            self.depth -= 1
            self._expect("op", ")")
            return node
        raise self._error(f"expected a value, found {token.text or 'the end'!r}", token)


def _require(node: Node, kind: Kind, message: str, token: _Token) -> None:
    if node.kind != kind:
        raise ExpressionError(f"{message}, got a {node.kind} at position {token.position}")


def _arithmetic(token: _Token, left: Node, right: Node, parser: _Parser) -> Node:
    if left.kind != "number" or right.kind != "number":
        raise parser._error(f"{token.text!r} takes numbers", token)
    return Arithmetic(token.text, left, right)


def _check_type_values(left: Node, right: Node, token: _Token, parser: _Parser, items: list[Any] | None = None) -> None:
    """``type == 'TRANSFR'`` would silently never match: a typo in a transaction type is an error."""
    if isinstance(right, Name) and right.name == "type":
        left, right = right, left
    if not (isinstance(left, Name) and left.name == "type"):
        return
    values = items if items is not None else ([right.value] if isinstance(right, Literal_) else [])
    for value in values:
        if value not in TRANSACTION_TYPES:
            raise parser._error(f"{value!r} is not a transaction type ({', '.join(TRANSACTION_TYPES)})", token)


@dataclass(frozen=True)
class Condition:
    """A parsed, type-checked rule condition."""

    source: str
    tree: Node

    def matches(self, values: Mapping[str, Any]) -> bool:
        """One row: the fields as Python values and ``score`` (the compiled closures: 3 rules cost ~1 us)."""
        return bool(self._compiled(values))

    @cached_property
    def _compiled(self) -> Callable[[Mapping[str, Any]], Any]:
        return self.tree.compiled()

    def matches_columns(self, values: Mapping[str, np.ndarray], n: int) -> np.ndarray:
        """Many rows: each field as an array of ``n`` values, and ``score``."""
        return np.broadcast_to(np.asarray(self.tree.columns(values, n), dtype=bool), (n,)).copy()

    @property
    def names(self) -> set[str]:
        return self.tree.names()

    @cached_property
    def fields(self) -> tuple[str, ...]:
        """The names the condition reads, in the order they first appear (what a decision shows)."""
        return tuple(dict.fromkeys(t.text for t in _tokens(self.source) if t.kind == "name"))


def parse_condition(source: str) -> Condition:
    """Parse and type-check a rule's condition; ExpressionError says what and where."""
    if not isinstance(source, str):
        raise ExpressionError(f"a condition is a string, got {type(source).__name__}")
    if len(source) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(f"a condition is at most {MAX_EXPRESSION_LENGTH} characters, got {len(source)}")
    if not source.strip():
        raise ExpressionError("a condition is empty")
    tree = _Parser(source).parse()
    if tree.kind != "bool":
        raise ExpressionError(f"a condition must be true or false, this is a {tree.kind}")
    return Condition(source, tree)

"""A typed formula -> symbolic f, gradient and Hessian -> vectorised NumPy callables.

Why our own parser: `sympy.sympify` / `parse_expr` run `eval` on the text, so a formula box that
used them would execute whatever a person (or a scenario file from someone else) types. Here the
text is read by a small tokenizer and a recursive-descent parser that builds SymPy objects
directly; nothing the user types is ever run as Python. `sympy.lambdify` is used only on trees we
built, so the code it generates comes from our tree, not from the text.

Grammar, loosest to tightest binding::

    formula := sum END
    sum     := product (('+' | '-') product)*
    product := unary (('*' | '/') unary)*
    unary   := ('-' | '+') unary | power
    power   := atom (('^' | '**') unary)?         right-associative: 2^3^2 = 2^(3^2)
    atom    := number | name | name '(' sum (',' sum)* ')' | '(' sum ')'

So ``-x^2 = -(x^2)`` (power binds tighter than unary minus, as in mathematics) and the exponent
may carry a sign: ``2^-x``, ``x^-y^2 = x^(-(y^2))``. There is no implicit multiplication (``2x``
is an error that says to write ``2*x``): it would make ``e2`` or ``sin x`` ambiguous.
Unicode the way people paste it is accepted: ``−`` (minus), ``×`` ``·`` ``⋅`` (times), ``÷``,
``π``, and ``²`` ``³`` as powers.

Absurd input is refused before SymPy can be asked to compute it: text longer than
`MAX_LENGTH`, nesting deeper than `MAX_DEPTH`, more than `MAX_NODES` operations, exponents above
`MAX_EXPONENT` in size on a base with a constant factor (``3^5000``, ``(2*x)^5000``; ``x^5000``
is fine), and any constant part whose value would not fit a float or would
underflow to 0 (every constant sub-expression is shadow-evaluated in floating point while it is
built, so ``9^9^9`` fails at the outer ``^`` instead of asking SymPy for a 369-million-digit
integer). Constant parts that are undefined (``log(0)``, ``tan(pi/2)``, ``(-8)^(1/3)``) are
refused with the column of the culprit.

Numbers are exact (``0.1`` is 1/10) so that derivatives stay tidy and ``x^2`` stays an integer
power, which NumPy evaluates as a fast square.

Derivatives are exact and symbolic, built node by node with `sympy.diff` (see `_Tape` for why
not on the whole formula at once), and compiled with `sympy.lambdify`, so a gradient costs a
handful of NumPy operations: for Rosenbrock ``t = y - x**2; [2*x - 400*t*x - 2, 200*t]``.
"""

from __future__ import annotations

import functools
import keyword
import math
import re
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import sympy as sp
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.precedence import precedence
from sympy.printing.str import StrPrinter

__all__ = [
    "MAX_DEPTH",
    "MAX_EXPONENT",
    "MAX_LENGTH",
    "MAX_NODES",
    "CompiledFormula",
    "FormulaError",
    "compile_formula",
    "function_names",
    "parse",
    "to_text",
]

MAX_LENGTH = 500
"""Longest formula text accepted (characters)."""
MAX_DEPTH = 50
"""Deepest nesting of parentheses, calls, signs and powers accepted."""
MAX_NODES = 400
"""Most operations (numbers, names, operators, calls) one formula may have."""
MAX_EXPONENT = 1000
"""Largest size of a constant exponent of a base with a constant factor: (2*x)^1001 and 3^1001
are refused; x^5000 is not."""
_MAX_LOG10 = 300
"""Constants must stay between 10^-300 and 10^300 in size (float64 ends near 1.8e308)."""
_EXACT = 2**53
"""Integers up to here are exact float64 values; larger ones are compiled as floats."""


class FormulaError(ValueError):
    """A formula that cannot be used, with the 1-based column where the problem is (or None).

    `reason` is the message without the position, for a UI that points at the column itself.
    """

    def __init__(self, reason: str, column: int | None = None, *, show_column: bool = True) -> None:
        self.reason = reason
        self.column = column
        shown = column is not None and show_column
        super().__init__(f"{reason} at column {column}" if shown else reason)


# ----------------------------------------------------------------------------------------------
# Names the grammar knows


def _sign(v: float) -> float:
    return 0.0 if v == 0 else math.copysign(1.0, v)


class _Function(NamedTuple):
    build: Callable[..., sp.Expr]  # SymPy constructor
    shadow: Callable[..., float]  # the same function on floats (for constant sub-expressions)
    min_args: int
    max_args: int | None  # None: any number


_FUNCTIONS: dict[str, _Function] = {
    "sin": _Function(sp.sin, math.sin, 1, 1),
    "cos": _Function(sp.cos, math.cos, 1, 1),
    "tan": _Function(sp.tan, math.tan, 1, 1),
    "asin": _Function(sp.asin, math.asin, 1, 1),
    "acos": _Function(sp.acos, math.acos, 1, 1),
    "atan": _Function(sp.atan, math.atan, 1, 1),
    "atan2": _Function(sp.atan2, math.atan2, 2, 2),
    "sinh": _Function(sp.sinh, math.sinh, 1, 1),
    "cosh": _Function(sp.cosh, math.cosh, 1, 1),
    "tanh": _Function(sp.tanh, math.tanh, 1, 1),
    "asinh": _Function(sp.asinh, math.asinh, 1, 1),
    "acosh": _Function(sp.acosh, math.acosh, 1, 1),
    "atanh": _Function(sp.atanh, math.atanh, 1, 1),
    "exp": _Function(sp.exp, math.exp, 1, 1),
    "log": _Function(sp.log, math.log, 1, 1),
    "ln": _Function(sp.log, math.log, 1, 1),
    "log10": _Function(lambda a: sp.log(a, 10), math.log10, 1, 1),
    "log2": _Function(lambda a: sp.log(a, 2), math.log2, 1, 1),
    "sqrt": _Function(sp.sqrt, math.sqrt, 1, 1),
    "abs": _Function(sp.Abs, abs, 1, 1),
    "sign": _Function(sp.sign, _sign, 1, 1),
    "min": _Function(sp.Min, min, 2, None),
    "max": _Function(sp.Max, max, 2, None),
}

_CONSTANTS: dict[str, tuple[sp.Expr, float]] = {
    "pi": (sp.pi, math.pi),
    "e": (sp.E, math.e),
}


def function_names() -> list[str]:
    """The function names a formula may call, for help texts and completion."""
    return sorted(_FUNCTIONS)


# ----------------------------------------------------------------------------------------------
# Tokenizer


class _Token(NamedTuple):
    kind: str  # "num" | "name" | "op" | "end"
    text: str
    column: int  # 1-based


_NUMBER = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_UNICODE_OPS = {"−": "-", "×": "*", "·": "*", "⋅": "*", "÷": "/"}
_SUPERSCRIPTS = {"²": "2", "³": "3"}
_OPS = set("+-*/^(),")


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        col = i + 1
        if ch.isspace():
            i += 1
        elif ch == "*" and text.startswith("**", i):
            tokens.append(_Token("op", "^", col))
            i += 2
        elif ch in _OPS:
            tokens.append(_Token("op", ch, col))
            i += 1
        elif ch in _UNICODE_OPS:
            tokens.append(_Token("op", _UNICODE_OPS[ch], col))
            i += 1
        elif ch in _SUPERSCRIPTS:
            tokens.append(_Token("op", "^", col))
            tokens.append(_Token("num", _SUPERSCRIPTS[ch], col))
            i += 1
        elif ch == "π":
            tokens.append(_Token("name", "pi", col))
            i += 1
        elif m := _NUMBER.match(text, i):
            tokens.append(_Token("num", m.group(), col))
            i = m.end()
        elif m := _NAME.match(text, i):
            tokens.append(_Token("name", m.group(), col))
            i = m.end()
        else:
            raise FormulaError(f"unexpected character {ch!r}", col)
    tokens.append(_Token("end", "", n + 1))
    return tokens


def _parse_number(text: str, column: int) -> sp.Rational:
    """Exact value of a decimal literal, refusing sizes float64 cannot hold."""
    mantissa, _, exponent_text = text.lower().partition("e")
    whole, _, frac = mantissa.partition(".")
    significant = (whole + frac).lstrip("0")
    if not significant:
        return sp.Integer(0)
    scale = (int(exponent_text) if exponent_text else 0) - len(frac)
    # value = int(whole + frac) * 10^scale, and that integer has len(significant) digits.
    magnitude = len(significant) + scale
    if magnitude > _MAX_LOG10:
        raise FormulaError(f"number {text} is too large", column)
    if magnitude < -_MAX_LOG10:
        raise FormulaError(f"number {text} is too small (write 0)", column)
    digits = int(whole + frac)
    if scale >= 0:
        return sp.Integer(digits * 10**scale)
    return sp.Rational(digits, 10**-scale)


# ----------------------------------------------------------------------------------------------
# Parser


class _Value(NamedTuple):
    """A parsed sub-expression and, when it contains no variable, its float value."""

    expr: sp.Expr
    const: float | None


_BAD_ATOMS = (sp.S.NaN, sp.S.ComplexInfinity, sp.S.Infinity, sp.S.NegativeInfinity)


class _Parser:
    def __init__(self, text: str, variables: tuple[str, ...]) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0
        self.depth = 0
        self.nodes = 0
        self.symbols = {name: _symbol(name) for name in variables}

    # -- token helpers ------------------------------------------------------------------------
    @property
    def tok(self) -> _Token:
        return self.tokens[self.pos]

    def _is(self, *ops: str) -> bool:
        t = self.tokens[self.pos]
        return t.kind == "op" and t.text in ops

    def _advance(self) -> _Token:
        t = self.tokens[self.pos]
        self.pos += 1
        return t

    def _unexpected(self, t: _Token) -> FormulaError:
        if t.kind == "end":
            return FormulaError("unexpected end of formula", t.column, show_column=False)
        return FormulaError(f"unexpected {t.text!r}", t.column)

    def _enter(self, column: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise FormulaError(
                f"formula is nested too deeply (more than {MAX_DEPTH} levels)", column
            )

    # -- grammar ------------------------------------------------------------------------------
    def parse(self) -> sp.Expr:
        if self.tok.kind == "end":
            raise FormulaError("empty formula", 1, show_column=False)
        value = self.sum()
        t = self.tok
        if t.kind != "end":
            if t.kind in ("num", "name") or t.text == "(":
                raise FormulaError(
                    f"expected an operator before {t.text!r} (write * to multiply)", t.column
                )
            raise self._unexpected(t)
        return value.expr

    def sum(self) -> _Value:
        left = self.product()
        while self._is("+", "-"):
            op = self._advance()
            right = self.product()
            if op.text == "+":
                left = self._node(left.expr + right.expr, _const_op(left, right, float.__add__), op)
            else:
                left = self._node(left.expr - right.expr, _const_op(left, right, float.__sub__), op)
        return left

    def product(self) -> _Value:
        left = self.unary()
        while self._is("*", "/"):
            op = self._advance()
            right = self.unary()
            if op.text == "*":
                left = self._node(left.expr * right.expr, _const_op(left, right, float.__mul__), op)
            else:
                if right.const == 0:
                    raise FormulaError("division by zero", op.column)
                const = None
                if left.const is not None and right.const is not None:
                    const = left.const / right.const
                left = self._node(left.expr / right.expr, const, op, "the quotient")
        return left

    def unary(self) -> _Value:
        if self._is("-", "+"):
            op = self._advance()
            self._enter(op.column)
            operand = self.unary()
            self.depth -= 1
            if op.text == "+":
                return operand
            const = None if operand.const is None else -operand.const
            return self._node(-operand.expr, const, op)
        return self.power()

    def power(self) -> _Value:
        base = self.atom()
        if not self._is("^"):
            return base
        op = self._advance()
        self._enter(op.column)
        exponent = self.unary()
        self.depth -= 1
        return self._pow(base, exponent, op)

    def atom(self) -> _Value:
        t = self.tok
        if t.kind == "num":
            self._advance()
            number = _parse_number(t.text, t.column)
            return self._node(number, float(number), t)
        if t.kind == "name":
            self._advance()
            if self._is("("):
                return self.call(t)
            if t.text in self.symbols:
                return self._node(self.symbols[t.text], None, t)
            if t.text in _CONSTANTS:
                expr, value = _CONSTANTS[t.text]
                return self._node(expr, value, t)
            if t.text in _FUNCTIONS:
                raise FormulaError(f"expected '(' after {t.text}", self.tok.column)
            raise FormulaError(f"unknown name {t.text!r}", t.column)
        if self._is("("):
            self._advance()
            self._enter(t.column)
            inner = self.sum()
            self._expect_close()
            self.depth -= 1
            return inner
        raise self._unexpected(t)

    def call(self, name: _Token) -> _Value:
        if name.text not in _FUNCTIONS:
            if name.text in self.symbols or name.text in _CONSTANTS:
                raise FormulaError(
                    f"{name.text!r} is not a function (write * to multiply)", name.column
                )
            raise FormulaError(f"unknown function {name.text!r}", name.column)
        fn = _FUNCTIONS[name.text]
        self._advance()  # "("
        self._enter(name.column)
        args: list[_Value] = []
        if not self._is(")"):
            args.append(self.sum())
            while self._is(","):
                self._advance()
                args.append(self.sum())
        self._expect_close()
        self.depth -= 1
        if len(args) < fn.min_args or (fn.max_args is not None and len(args) > fn.max_args):
            if fn.max_args is None:
                wanted = f"at least {fn.min_args} arguments"
            else:
                wanted = f"{fn.min_args} argument" + ("s" if fn.min_args != 1 else "")
            raise FormulaError(f"{name.text} expects {wanted}, got {len(args)}", name.column)
        shown = ", ".join(f"{a.const:.6g}" if a.const is not None else "…" for a in args)
        what = f"{name.text}({shown})"
        const = None
        if all(a.const is not None for a in args):
            try:
                const = fn.shadow(*(a.const for a in args))
            except OverflowError:
                raise FormulaError(f"{what} is too large", name.column) from None
            except (ValueError, ZeroDivisionError):
                raise FormulaError(f"{what} is undefined", name.column) from None
        try:
            expr = fn.build(*(a.expr for a in args))
        except (TypeError, ValueError) as err:  # e.g. min(x, log(-x^2)): not comparable
            raise FormulaError(f"{what} cannot be built ({err})", name.column) from None
        return self._node(expr, const, name, what)

    def _expect_close(self) -> None:
        if not self._is(")"):
            raise FormulaError("expected ')'", self.tok.column)
        self._advance()

    # -- building -----------------------------------------------------------------------------
    def _pow(self, base: _Value, exponent: _Value, op: _Token) -> _Value:
        e = exponent.const
        # SymPy computes big powers of numbers exactly, and distributes integer powers over a
        # product: (sqrt(2)*x)^n becomes 2^(n/2) * x^n. So a big exponent is refused unless the
        # base is 0 or ±1, or has no constant factor at all (x^5000, (x + 1)^5000 stay symbolic,
        # and ((x^50)^50 prints as x^2500, which must parse again).
        trivial_base = base.expr in (sp.S.Zero, sp.S.One, sp.S.NegativeOne)
        coefficient = base.expr.as_independent(*self.symbols.values(), as_Add=False)[0]
        if e is not None and abs(e) > MAX_EXPONENT and not trivial_base and coefficient != 1:
            raise FormulaError(f"exponent {e:.6g} is too large (at most {MAX_EXPONENT})", op.column)
        if base.const == 0 and e is None:
            # SymPy turns 0^-x into zoo^x; 0^x jumps between 0, 1 and infinity with the sign of x.
            raise FormulaError("0 to a variable power is not a usable function", op.column)
        if base.const is not None and base.const < 0 and e is None:
            # (-2)^x is real only at integer x, and its derivative has log(-2) = log 2 + iπ.
            raise FormulaError(
                "a negative number to a variable power is not a real function", op.column
            )
        const = None
        if base.const is not None and e is not None:
            try:
                const = base.const**e
            except OverflowError:
                raise FormulaError("number too large", op.column) from None
            except ZeroDivisionError:
                raise FormulaError("division by zero (0 to a negative power)", op.column) from None
            if isinstance(const, complex):
                raise FormulaError(
                    f"({base.const:.6g})^{e:.6g} is not a real number "
                    "(a negative number to a fractional power)",
                    op.column,
                )
        elif e is not None and e != 0:
            # SymPy distributes integer powers over products, (c*x)^n -> c^n * x^n: check c^n.
            coeff = base.expr.as_coeff_Mul()[0]
            if coeff.is_Rational and coeff != 0 and abs(e) * abs(_log10(coeff)) > _MAX_LOG10:
                raise FormulaError("number too large", op.column)
        return self._node(sp.Pow(base.expr, exponent.expr), const, op)

    def _node(self, expr: sp.Expr, const: float | None, t: _Token, what: str = "") -> _Value:
        """Count and check a freshly built sub-expression; `what` names it in messages."""
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise FormulaError(f"formula is too long (more than {MAX_NODES} operations)", t.column)
        if expr.has(*_BAD_ATOMS):
            # e.g. tan(pi/2) or 1/sin(pi): exact arithmetic found a pole the floats missed.
            reason = f"{what} is undefined" if what else "undefined value (division by zero)"
            raise FormulaError(reason, t.column)
        if expr.has(sp.I) or any(
            p.base.is_number and p.base.is_negative and not p.exp.is_integer
            for p in expr.atoms(sp.Pow)
        ):
            # SymPy proved this part complex for every real x, y: sqrt(-x^2 - 1) = I*sqrt(x^2 + 1),
            # or (-e^x)^2.25 = (-1)^(1/4) * e^(9x/4), a principal root of -1 times a real.
            raise FormulaError(f"{what or 'this part'} is never a real number", t.column)
        if const is None and not expr.free_symbols:
            # The variables cancelled (x - x): the children were checked, so this is safe.
            const = complex(expr.evalf(20))
            const = const.real if const.imag == 0 else const
        if const is not None:
            if isinstance(const, complex) or expr.is_extended_real is False:
                raise FormulaError(f"{what or 'value'} is not a real number", t.column)
            if not math.isfinite(const) or abs(const) > 10**_MAX_LOG10:
                raise FormulaError(f"{what or 'number'} is too large", t.column)
            if (const == 0 and expr != 0) or 0 < abs(const) < 10.0**-_MAX_LOG10:
                # e.g. 0.001^100: exactly 10^-300 but below what float64 holds well
                raise FormulaError(f"{what or 'number'} is too small (write 0)", t.column)
        return _Value(expr, const)


def _const_op(a: _Value, b: _Value, op: Callable[[float, float], float]) -> float | None:
    if a.const is None or b.const is None:
        return None
    return op(a.const, b.const)


def _log10(r: sp.Rational) -> float:
    """log10 |r| for any size of exact rational (math.log10 accepts big ints)."""
    return math.log10(abs(r.p)) - math.log10(r.q)


@functools.cache
def _symbol(name: str) -> sp.Symbol:
    """Variables are real: |x| differentiates to sign(x) and sqrt(x^2) is |x|, as on the plot."""
    return sp.Symbol(name, real=True)


def _check_variables(variables: Sequence[str]) -> tuple[str, ...]:
    names = tuple(variables)
    if not names:
        raise ValueError("variables must name at least one variable")
    for v in names:
        if not isinstance(v, str) or not _NAME.fullmatch(v) or keyword.iskeyword(v):
            raise ValueError(f"invalid variable name {v!r}: use letters, digits and _")
        if v in _FUNCTIONS or v in _CONSTANTS:
            raise ValueError(f"invalid variable name {v!r}: it is a function or constant name")
    if len(set(names)) != len(names):
        raise ValueError(f"variable names must be distinct, got {names}")
    return names


def parse(text: str, variables: Sequence[str] = ("x", "y")) -> sp.Expr:
    """Parse `text` into a SymPy expression in real symbols named `variables`.

    Raises FormulaError (a ValueError) saying what is wrong and at which column.
    """
    if not isinstance(text, str):
        raise TypeError(f"formula must be a str, got {type(text).__name__}")
    names = _check_variables(variables)
    if len(text) > MAX_LENGTH:
        raise FormulaError(
            f"formula is too long ({len(text)} characters, at most {MAX_LENGTH})", MAX_LENGTH + 1
        )
    return _Parser(text, names).parse()


# ----------------------------------------------------------------------------------------------
# Back to text


class _TextPrinter(StrPrinter):
    """Prints SymPy expressions in our grammar, so parse(to_text(e)) gives e back."""

    def _print_Abs(self, expr: sp.Expr) -> str:
        return f"abs({self._print(expr.args[0])})"

    def _print_Min(self, expr: sp.Expr) -> str:
        return "min(" + ", ".join(self._print(a) for a in expr.args) + ")"

    def _print_Max(self, expr: sp.Expr) -> str:
        return "max(" + ", ".join(self._print(a) for a in expr.args) + ")"

    def _print_Exp1(self, expr: sp.Expr) -> str:
        return "e"


def to_text(expr: sp.Expr) -> str:
    """A formula in our grammar for an expression `parse` produced (for display and saving).

    Exact, except that a rational constant with more than 100 digits above or below the line
    (2.25^320 = 3^640 / 2^640) is written as a 17-digit decimal: its exact digits would not
    parse back (numbers must stay below 10^300) and cannot be read anyway.
    """
    huge = 10**100
    approx = {r: sp.Float(r, 17) for r in expr.atoms(sp.Rational) if abs(r.p) > huge or r.q > huge}
    return _TextPrinter().doprint(expr.xreplace(approx) if approx else expr)


# ----------------------------------------------------------------------------------------------
# Compiling to NumPy


class CompiledFormula(NamedTuple):
    """f, its gradient and its Hessian as vectorised NumPy callables over points (..., d).

    value: (..., d) -> (...); gradient: (..., d) -> (..., d); hessian: (..., d) -> (..., d, d).
    Outputs always have the full shape (a constant partial derivative is an array of that
    constant), are fresh float64 arrays, and carry NaN/inf where f is undefined or overflows
    (no warnings are emitted: a diverging ball is data, not an error).
    """

    text: str
    expr: sp.Expr
    variables: tuple[str, ...]
    value: Callable[[np.ndarray], np.ndarray]
    gradient: Callable[[np.ndarray], np.ndarray]
    hessian: Callable[[np.ndarray], np.ndarray]


def compile_formula(text: str, variables: Sequence[str] = ("x", "y")) -> CompiledFormula:
    """Parse `text`, differentiate it symbolically and compile f, grad f and Hessian to NumPy.

    Results are cached by (text, variables): compiling costs tens of milliseconds, and the
    returned callables are pure, so sharing them is safe.

    Where f has a kink the derivative is SymPy's: d|x|/dx = sign(x) (0 at 0), d max(x, y)/dx
    is a step that is 1/2 at the tie, and the Dirac deltas of second derivatives of kinks are
    taken as 0 (their value almost everywhere). Where a derivative is 0/0 (sqrt(x^2 + y^2) at
    the origin) the result is NaN.
    """
    return _compile(text, _check_variables(variables))


@functools.lru_cache(maxsize=256)
def _compile(text: str, variables: tuple[str, ...]) -> CompiledFormula:
    expr = parse(text, variables)
    symbols = [_symbol(v) for v in variables]
    d = len(symbols)
    tape = _Tape(symbols)
    root = tape.visit(expr)
    pairs = [(i, j) for i in range(d) for j in range(i, d)]

    value_fn = tape.function([root.value])
    grad_fn = tape.function(root.grad)
    hess_fn = tape.function([root.hess[p] for p in pairs])

    def value(points: np.ndarray) -> np.ndarray:
        pts = _as_points(points, d)
        with np.errstate(all="ignore"):
            (result,) = value_fn(*_columns(pts))
        return _full(result, pts)

    def gradient(points: np.ndarray) -> np.ndarray:
        pts = _as_points(points, d)
        out = np.empty(pts.shape)
        with np.errstate(all="ignore"):
            parts = grad_fn(*_columns(pts))
        for k, part in enumerate(parts):
            out[..., k] = part
        return out

    def hessian(points: np.ndarray) -> np.ndarray:
        pts = _as_points(points, d)
        out = np.empty((*pts.shape, d))
        with np.errstate(all="ignore"):
            parts = hess_fn(*_columns(pts))
        for (i, j), part in zip(pairs, parts, strict=True):
            out[..., i, j] = part
            if i != j:
                out[..., j, i] = out[..., i, j]
        return out

    return CompiledFormula(text, expr, variables, value, gradient, hessian)


class _Jet(NamedTuple):
    """Value, gradient and Hessian of a node, each a variable, a tape symbol or a constant."""

    value: sp.Expr
    grad: list[sp.Expr]
    hess: dict[tuple[int, int], sp.Expr]  # (i, j) with i <= j


class _Tape:
    """Symbolic forward-mode differentiation into straight-line code.

    Why not `sympy.diff` on the whole formula: the derivative of a nested formula repeats the
    inner parts at every level, so the tree of d²/dx² exp(x*exp(x*...)) grows with the cube of
    the depth (40 levels: 380 000 nodes and half a minute of SymPy time). Here every node of the
    formula gets a symbol for its value, first and second derivatives, each defined by the chain
    rule from its children's symbols, and `sympy.diff` is applied only to one node at a time
    (d sin(u)/du = cos(u)). The work and the generated code grow linearly with the formula, and
    lambdify prints the assignments as its common-subexpression list. The results are the same
    exact derivatives; tests compare them with `sympy.diff` of the whole formula.
    """

    def __init__(self, symbols: list[sp.Symbol]) -> None:
        self.symbols = symbols
        self.index = {s: k for k, s in enumerate(symbols)}
        # The generated code names its arguments _x0, _x1, ...: no variable name can then shadow
        # a NumPy name the code uses (lambdify's dummify would do it too, but costs seconds).
        self.args = [sp.Symbol(f"_x{k}", real=True) for k in range(len(symbols))]
        self.assignments: list[tuple[sp.Symbol, sp.Expr]] = []
        self.memo: dict[sp.Expr, _Jet] = {}
        d = len(symbols)
        self.pairs = [(i, j) for i in range(d) for j in range(i, d)]

    def _name(self, expr: sp.Expr) -> sp.Expr:
        """A reference to `expr`: itself when it is a number, a variable or a constant."""
        expr = _clean(expr)
        if expr.is_Atom or not expr.free_symbols:
            return expr
        symbol = sp.Dummy(real=True)
        self.assignments.append((symbol, expr))
        return symbol

    def visit(self, node: sp.Expr) -> _Jet:
        jet = self.memo.get(node)
        if jet is None:
            jet = self.memo[node] = self._visit(node)
        return jet

    def _visit(self, node: sp.Expr) -> _Jet:
        d = len(self.symbols)
        zero_hess = {p: sp.S.Zero for p in self.pairs}
        if node in self.index:
            grad = [sp.S.One if k == self.index[node] else sp.S.Zero for k in range(d)]
            return _Jet(self.args[self.index[node]], grad, zero_hess)
        if not node.free_symbols:
            return _Jet(node, [sp.S.Zero] * d, zero_hess)
        args = node.args
        if len(args) > 2 and (node.is_Mul or isinstance(node, sp.Min | sp.Max)):
            # n-ary products and min/max as a chain of binary ones: linear, not quadratic, work.
            head = node.func(*args[:-1])
            return self._apply(node.func, [self.visit(head), self.visit(args[-1])])
        return self._apply(node.func, [self.visit(a) for a in args])

    def _apply(self, func: Callable[..., sp.Expr], kids: list[_Jet]) -> _Jet:
        local = func(*(k.value for k in kids))
        u = self._name(local)
        # One chain-rule term per distinct child: in x^x both children are x, and
        # d(x^x)/dx already counts both places.
        active, seen = [], set()
        for i, k in enumerate(kids):
            if k.value not in seen and any(g != 0 for g in k.grad):
                active.append(i)
                seen.add(k.value)
        own = {local: u} if u != local else {}
        first = {}
        second = {}
        for i in active:
            raw = sp.diff(local, kids[i].value)
            first[i] = _clean(raw.xreplace(own))
            for k in active:
                if kids[k].value in raw.free_symbols:
                    second[i, k] = _clean(sp.diff(raw, kids[k].value).xreplace(own))
        d = len(self.symbols)
        grad = [self._name(sp.Add(*(first[i] * kids[i].grad[j] for i in active))) for j in range(d)]
        hess = {}
        for j, m in self.pairs:
            terms = [first[i] * kids[i].hess[j, m] for i in active]
            terms += [p * kids[i].grad[j] * kids[k].grad[m] for (i, k), p in second.items()]
            hess[j, m] = self._name(sp.Add(*terms))
        return _Jet(u, grad, hess)

    def function(self, outputs: list[sp.Expr]) -> Callable[..., list]:
        """Compile `outputs` with just the assignments they need, single-use ones inlined."""
        needed = set().union(*(o.free_symbols for o in outputs))
        kept = []
        for symbol, expr in reversed(self.assignments):
            if symbol in needed:
                kept.append((symbol, expr))
                needed |= expr.free_symbols
        kept.reverse()
        uses: dict[sp.Symbol, int] = {}
        for e in [e for _, e in kept] + outputs:
            for s in e.free_symbols:
                uses[s] = uses.get(s, 0) + 1
        inline: dict[sp.Symbol, sp.Expr] = {}
        code = []
        for symbol, expr in kept:
            expr = expr.xreplace(inline)
            if uses[symbol] == 1:
                inline[symbol] = expr
            else:
                code.append((symbol, expr))
        outputs = [_clean(o.xreplace(inline)) for o in outputs]
        return sp.lambdify(
            self.args,
            outputs,
            modules="numpy",
            # the settings lambdify gives its own printer: short names, imported into the
            # function's namespace (e.g. reduce and maximum for max)
            printer=_NumPyCode(
                {"fully_qualified_modules": False, "inline": True, "allow_unknown_functions": True}
            ),
            cse=lambda _: (code, outputs),
            docstring_limit=0,
        )


class _NumPyCode(NumPyPrinter):
    """NumPy code with sums written positive terms first: ``y - x**2`` is one array operation,
    SymPy's canonical ``-x**2 + y`` is two (a negation, then an addition)."""

    def _print_Add(self, expr: sp.Expr, order: object = None) -> str:
        positive = [t for t in expr.args if not t.could_extract_minus_sign()]
        negative = [t for t in expr.args if t.could_extract_minus_sign()]
        if not positive:
            return super()._print_Add(expr, order)
        prec = precedence(expr)
        text = " + ".join(self.parenthesize(t, prec) for t in positive)
        return text + "".join(f" - {self.parenthesize(-t, prec)}" for t in negative)


def _clean(expr: sp.Expr) -> sp.Expr:
    """Make a derivative printable as float64 NumPy code.

    DiracDelta (the second derivative of a kink such as |x| or max) becomes 0, its value almost
    everywhere. Rationals with a numerator or denominator beyond 2^53, which NumPy could not
    take as float64 literals, become floats; a constant beyond float64 is a FormulaError.
    """
    if expr.has(sp.DiracDelta):
        expr = expr.replace(sp.DiracDelta, lambda *args: sp.S.Zero)
    if expr.has(sp.Derivative, sp.Subs):
        raise FormulaError("cannot differentiate this formula symbolically", None)
    if expr.has(sp.I):
        raise FormulaError("the derivatives of this formula are not real", None)
    big = {}
    for number in expr.atoms(sp.Rational):
        if abs(number.p) > _EXACT or number.q > _EXACT:
            # Printed as an int literal, 12^20 would reach NumPy as an object, not a float.
            if _log10(number) > _MAX_LOG10:
                raise FormulaError("a constant in the derivatives is too large", None)
            big[number] = sp.Float(number, 17)
    return expr.xreplace(big) if big else expr


def _as_points(points: np.ndarray, d: int) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim == 0 or pts.shape[-1] != d:
        raise ValueError(f"points must have shape (n, {d}), got {pts.shape}")
    return pts


def _columns(pts: np.ndarray) -> list[np.ndarray]:
    return [pts[..., k] for k in range(pts.shape[-1])]


def _full(result: object, pts: np.ndarray) -> np.ndarray:
    """`result` as a fresh float64 array of shape pts.shape[:-1], even if constant."""
    shape = pts.shape[:-1]
    if (
        type(result) is np.ndarray
        and result.shape == shape
        and result.dtype == np.float64
        and not np.may_share_memory(result, pts)
    ):
        return result
    out = np.empty(shape)
    out[...] = result
    return out

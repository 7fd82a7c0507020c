r"""Pachyderm's glob dialect (ohmyglob, a fork of gobwas/glob) compiled to an anchored Python regex.

The syntax, with ``/`` as the only separator and no dot-file exclusion:

==================  ==========================  ==============================================
glob                regex                       notes
==================  ==========================  ==============================================
``*``               ``[^/]*``                   may be empty
``**``              ``.*``                      crosses ``/``; ``***`` is ``**`` then ``*``
``?``               ``[^/]``                    exactly one character
``[abc]`` ``[a-c]`` ``[abc]`` ``[a-c]``         several chars and ranges may be mixed
``[!a]`` ``[^a]``   ``[^a]``                    a negated class may match ``/``
``{a,b*}``          ``(?:a|b[^/]*)``            no capture; may nest
``(a|b)`` ``@(…)``  ``(a|b)``                   capture group
``*(…)``            ``((?:…)*)``                capturing repetition; likewise ``+(…)``, ``?(…)``
``!(…)``            see below                   capturing negation
``\c``             ``c``                       escape
anything else       escaped literal
==================  ==========================  ==============================================

The two-character sequences ``*(``, ``?(``, ``+(``, ``@(`` and ``!(`` open an extglob, so
``/foo?(1)`` is "foo, optionally followed by 1". A lone ``@``, ``!`` or ``+`` is a literal.
Capture groups are numbered by their opening parenthesis; ``{…}`` does not count.

**Negation** is translated exactly as ohmyglob does: ``!(X)`` becomes
``((?:(?!(?:X)END)[^/]*))``. ``END`` is ``\Z`` for the *last* negation of the pattern when no
text, ``*`` or ``**`` follows it, and empty otherwise (every earlier negation gets an empty
``END``). Anchored at the end, ``!(X)`` means "the rest of the path is one segment that ``X`` does
not match exactly" (``/!(a)`` matches ``/b`` and ``/ab``, not ``/a``; ``!(**)`` matches nothing).
Followed by more pattern, it means "no prefix of the rest matches ``X``" (``/!(a).txt`` rejects
``/ab.txt`` too) — a quirk we keep so datums agree with Pachyderm.

Deviations, all on patterns Pachyderm rejects or that can never match a legal PFS file name (which
cannot contain ``* ? [ ] { } ! ( ) @ + ^``): an unmatched ``)`` or ``}``, a dangling ``\`` and
an empty ``[]`` are errors here; classes may mix chars and ranges (``[a-cx]``); an empty capture
``()`` still counts as a (empty) group, so numbering never shifts.

Patterns are cleaned first (:func:`clean_glob`), exactly like Pachyderm's ``pfsfile.CleanPath``.
**Bounded matching.** Pachyderm matches in linear time (Go's ``regexp``); Python's ``re``
backtracks, so ``/*(*(a))b`` over a 40-character name would run for minutes. Each pattern gets
the engine that is safe for it (:attr:`Glob.engine`):

* ``re`` for *simple* patterns, where backtracking is provably small: at most one ``*``,
  ``**`` or ``!(…)`` per path segment (segments are split by a literal ``/``; the last one may
  hold two when there is no ``**``), at most one ``**``, no ``{a,b}`` / ``(a|b)`` alternation,
  no ``*(`` ``+(`` ``?(`` repetition, a negation's body holding at most one ``*`` (the common
  cases: ``/*/*``, ``/(*)-(*).txt``, ``/**/*.csv``, ``/!(*.tmp)``). ``re`` is about 15 times
  faster per match than RE2 through its Python binding.
* ``re2`` (``google-re2``, linear time, the same leftmost-first captures) for everything else.
* A pattern that is not simple *and* uses ``!(…)`` (a lookahead RE2 cannot run) is refused:
  ``… is too complex to match in bounded time``.

Patterns longer than 4,096 characters, or nesting ``(`` / ``{`` more than 64 deep, are refused.

Matching runs on *entry* paths: the listing has files (``/a/b.txt``) and directories (``/d/``);
:meth:`Glob.match_entry` strips a directory's trailing ``/`` before matching, except for the root
``/``, which only the pattern ``/`` matches.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal, Protocol

from airflow_datum_provider.core.errors import GlobError

__all__ = [
    "MAX_GLOB_DEPTH",
    "MAX_GLOB_LENGTH",
    "Glob",
    "clean_glob",
    "compile_glob",
    "expand_template",
]

MAX_GLOB_LENGTH = 4096
MAX_GLOB_DEPTH = 64


class _Match(Protocol):
    def group(self, index: int, /) -> Any: ...

    def groups(self) -> tuple[Any, ...]: ...


class _Matcher(Protocol):
    def match(self, text: str, /) -> _Match | None: ...


def clean_glob(pattern: str) -> str:
    """Clean a glob like Pachyderm's ``pfsfile.CleanPath``.

    Go's ``path.Clean`` on ``"/" + pattern`` (collapse ``//``, drop ``.``, resolve ``..`` without
    climbing above the root), then a single leading ``/`` and no trailing ``/``:
    ``""`` → ``/``, ``*`` → ``/*``, ``/(*)/`` → ``/(*)``, ``a/../b`` → ``/b``.
    """
    parts: list[str] = []
    for part in pattern.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/" + "/".join(parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class Glob:
    """A compiled, cleaned glob.

    ``prefix`` is the literal text before the first glob metacharacter: every matching path
    starts with it, so a sorted listing can be narrowed to that range before matching.
    ``regex`` is the Python translation (what the pattern means); ``matcher`` is what matches,
    chosen by ``engine`` (see the module docstring): ``regex`` itself, or its RE2 compilation.
    """

    pattern: str
    regex: re.Pattern[str]
    groups: int
    prefix: str
    engine: Literal["re", "re2"] = "re"
    matcher: _Matcher = field(default=None, repr=False, compare=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.matcher is None:
            object.__setattr__(self, "matcher", self.regex)

    def match(self, path: str) -> bool:
        """Whether ``path`` (already without a directory's trailing ``/``) matches."""
        return self.matcher.match(path) is not None

    def captures(self, path: str) -> tuple[str, ...] | None:
        """The whole path then groups ``1..n`` (an unmatched optional group is ``""``)."""
        m = self.matcher.match(path)
        if m is None:
            return None
        return (m.group(0), *(g or "" for g in m.groups()))

    def match_entry(self, path: str) -> bool:
        """Match a listing entry: directories keep their trailing ``/``; the root is ``/``."""
        if path == "/":
            return self.pattern == "/"
        return self.match(path[:-1] if path.endswith("/") else path)

    def captures_entry(self, path: str) -> tuple[str, ...] | None:
        """:meth:`captures` for a listing entry, with the same rules as :meth:`match_entry`."""
        if path == "/":
            return ("/",) if self.pattern == "/" else None
        return self.captures(path[:-1] if path.endswith("/") else path)


def _cut(pattern: str) -> str:
    return pattern if len(pattern) <= 80 else pattern[:79] + "…"


@lru_cache(maxsize=1024)
def compile_glob(pattern: str, field: str = "") -> Glob:
    """Clean and compile ``pattern``; a malformed one raises :class:`GlobError` naming ``field``."""
    if len(pattern) > MAX_GLOB_LENGTH:
        raise GlobError(
            f"a glob of {len(pattern)} characters is longer than {MAX_GLOB_LENGTH}",
            field=field,
            pattern=pattern[:100],
        )
    cleaned = clean_glob(pattern)
    try:
        node = _Parser(cleaned).parse()
        pieces = node.compile()
        body = _finish(pieces)
        regex = re.compile(r"\A" + body + r"\Z")
    except _ParseError as exc:
        raise GlobError(
            f"`{_cut(pattern)}` is not a valid glob: {exc}", field=field, pattern=pattern
        ) from None
    except re.error as exc:
        raise GlobError(
            f"`{_cut(pattern)}` is not a valid glob: {exc.msg}", field=field, pattern=pattern
        ) from None
    prefix = _literal_prefix(cleaned)
    if _simple(node, in_negation=False):
        return Glob(pattern=cleaned, regex=regex, groups=regex.groups, prefix=prefix)
    if any(p is _NEG_END for p in pieces):
        raise GlobError(
            f"`{_cut(pattern)}` is too complex to match in bounded time: a `!(…)` negation cannot be "
            "combined with `*(`/`+(`/`?(`, alternation, or several `*` in one path segment; "
            "simplify the pattern or split the input",
            field=field,
            pattern=pattern,
        )
    import re2  # only patterns that need it pay for the import

    try:
        matcher = re2.compile(r"\A" + body + r"\z", _re2_options())
    except re2.error as exc:
        detail = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        raise GlobError(
            f"`{_cut(pattern)}` is not a valid glob: {detail}", field=field, pattern=pattern
        ) from None
    return Glob(
        pattern=cleaned,
        regex=regex,
        groups=regex.groups,
        prefix=prefix,
        engine="re2",
        matcher=matcher,
    )


@lru_cache(maxsize=1)
def _re2_options() -> Any:
    import re2

    options = re2.Options()
    options.log_errors = False  # RE2 would print to stderr; the error is raised instead
    options.max_mem = 32 << 20
    return options


_TEMPLATE = re.compile(r"\$(?:(\$)|(\d+)|\{(\d+)\})")


def expand_template(template: str, captures: Sequence[str]) -> str:
    """Expand a ``join_on`` / ``group_by`` template over :meth:`Glob.captures`.

    ``$n`` and ``${n}`` become group ``n`` (``$0`` is the whole path; a number past the last group
    becomes ``""``), ``$$`` becomes ``$``; any other ``$`` stays literal.
    """

    def repl(m: re.Match[str]) -> str:
        if m.group(1):
            return "$"
        index = int(m.group(2) or m.group(3))
        return captures[index] if index < len(captures) else ""

    return _TEMPLATE.sub(repl, template)


# --- parsing ----------------------------------------------------------------------------------

_META = frozenset("\\*?[]{}()!@+|,^")


def _literal_prefix(cleaned: str) -> str:
    for i, ch in enumerate(cleaned):
        if ch in _META:
            return cleaned[:i]
    return cleaned


class _ParseError(Exception):
    pass


class _Marker:
    """A placeholder piece in the compiled regex (see the module docstring on negation)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


# After text, `*` and `**`: "something that consumes input follows".
_BOUNDARY = _Marker("BOUNDARY")
# Inside a negation's lookahead, where `\Z` may go.
_NEG_END = _Marker("NEG_END")

_Piece = str | _Marker


class _Node:
    def compile(self) -> list[_Piece]:
        raise NotImplementedError


class _Leaf(_Node):
    def __init__(self, regex: str, *, boundary: bool, kind: str = "text", text: str = "") -> None:
        self.regex = regex
        self.boundary = boundary
        self.kind = kind  # text, star, globstar, one (``?`` or a class)
        self.text = text

    def compile(self) -> list[_Piece]:
        return [self.regex, _BOUNDARY] if self.boundary else [self.regex]


class _Seq(_Node):
    def __init__(self, items: list[_Node]) -> None:
        self.items = items

    def compile(self) -> list[_Piece]:
        out: list[_Piece] = []
        for item in self.items:
            out.extend(item.compile())
        return out


def _join(alternatives: list[_Seq]) -> list[_Piece]:
    out: list[_Piece] = []
    for i, alt in enumerate(alternatives):
        if i:
            out.append("|")
        out.extend(alt.compile())
    return out


class _AnyOf(_Node):
    def __init__(self, alternatives: list[_Seq]) -> None:
        self.alternatives = alternatives

    def compile(self) -> list[_Piece]:
        if not self.alternatives:
            return []
        return ["(?:", *_join(self.alternatives), ")"]


class _Capture(_Node):
    def __init__(self, quantifier: str, alternatives: list[_Seq]) -> None:
        self.quantifier = quantifier
        self.alternatives = alternatives

    def compile(self) -> list[_Piece]:
        body = _join(self.alternatives)
        if self.quantifier in "*+?":
            return ["((?:", *body, ")" + self.quantifier + ")"]
        if self.quantifier == "!":
            return ["((?:(?!(?:", *body, _NEG_END, "))[^/]*))"]
        return ["(", *body, ")"]


def _simple(seq: _Node, *, in_negation: bool) -> bool:
    """Whether backtracking in Python's ``re`` stays small for this tree (module docstring).

    With one star-like item per segment, each segment matches in at most one way, so a failure
    later never re-enumerates earlier segments; the last segment may hold two (``m²`` steps for
    an ``m``-character name) unless a ``**`` multiplies them.
    """
    segments = [0]  # star-like items per path segment
    globstars = 0

    def star() -> None:
        segments[-1] += 1

    def walk(node: _Node) -> bool:
        nonlocal globstars
        if isinstance(node, _Seq):
            return all(walk(item) for item in node.items)
        if isinstance(node, _Leaf):
            if node.kind == "text" and "/" in node.text:
                segments.append(0)
            elif node.kind in ("star", "globstar"):
                star()
                globstars += node.kind == "globstar"
            return True
        if isinstance(node, _AnyOf):
            return len(node.alternatives) <= 1 and all(walk(a) for a in node.alternatives)
        if isinstance(node, _Capture):
            alternatives = node.alternatives
            if node.quantifier == "!":
                if in_negation:
                    return False
                star()
                if len(alternatives) == 1:
                    return _simple(alternatives[0], in_negation=True)
                return all(_simple(a, in_negation=True) and _star_free(a) for a in alternatives)
            return (
                node.quantifier == "@"
                and len(alternatives) <= 1
                and all(walk(a) for a in alternatives)
            )
        return False  # pragma: no cover - every node type is handled above

    if not walk(seq) or globstars > 1:
        return False
    last = 1 if globstars or in_negation else 2
    return all(n <= 1 for n in segments[:-1]) and segments[-1] <= last


def _star_free(node: _Node) -> bool:
    if isinstance(node, _Leaf):
        return node.kind not in ("star", "globstar")
    if isinstance(node, _Seq):
        return all(_star_free(item) for item in node.items)
    if isinstance(node, _AnyOf | _Capture):
        return all(_star_free(alt) for alt in node.alternatives)
    return False  # pragma: no cover


def _finish(pieces: list[_Piece]) -> str:
    """Resolve the markers the way ohmyglob's ``Compile`` does."""
    neg_positions = [i for i, p in enumerate(pieces) if p is _NEG_END]
    last = neg_positions[-1] if neg_positions else -1
    anchor = last >= 0 and not any(p is _BOUNDARY for p in pieces[last + 1 :])
    out: list[str] = []
    for i, piece in enumerate(pieces):
        if isinstance(piece, str):
            out.append(piece)
        elif i == last and anchor:
            out.append(r"\Z")
    return "".join(out)


class _Parser:
    """Recursive descent over one cleaned pattern.

    The innermost open construct decides what ``,`` ``}`` ``|`` ``)`` mean: separators and
    terminators inside ``{…}`` / ``(…)`` respectively, literals elsewhere (except a stray ``)``
    or ``}``, which is an error).
    """

    def __init__(self, pattern: str) -> None:
        self.s = pattern
        self.i = 0
        self.depth = 0

    def parse(self) -> _Seq:
        seq, end = self._seq(None)
        assert end is None
        return seq

    def _peek(self, offset: int = 0) -> str:
        j = self.i + offset
        return self.s[j] if j < len(self.s) else ""

    def _seq(self, context: str | None) -> tuple[_Seq, str | None]:
        """Parse until a separator/terminator of ``context`` (``"{"``, ``"("``) or the end."""
        seps = {"{": ",}", "(": "|)"}.get(context or "", "")
        items: list[_Node] = []
        text: list[str] = []

        def flush() -> None:
            if text:
                literal = "".join(text)
                items.append(_Leaf(re.escape(literal), boundary=True, text=literal))
                text.clear()

        while self.i < len(self.s):
            ch = self.s[self.i]
            nxt = self._peek(1)
            if ch in seps:
                self.i += 1
                flush()
                return _Seq(items), ch
            if ch == "\\":
                if not nxt:
                    raise _ParseError("dangling escape `\\`")
                text.append(nxt)
                self.i += 2
                continue
            if ch in ")}":
                raise _ParseError(f"unmatched `{ch}`")
            node: _Node | None = None
            if ch == "*" and nxt == "*":
                self.i += 2
                node = _Leaf(".*", boundary=True, kind="globstar")
            elif ch in "*?+@!" and nxt == "(":
                self.i += 2
                node = _Capture(ch, self._alternatives("("))
            elif ch == "(":
                self.i += 1
                node = _Capture("@", self._alternatives("("))
            elif ch == "*":
                self.i += 1
                node = _Leaf("[^/]*", boundary=True, kind="star")
            elif ch == "?":
                self.i += 1
                node = _Leaf("[^/]", boundary=False, kind="one")
            elif ch == "[":
                self.i += 1
                node = _Leaf(self._char_class(), boundary=False, kind="one")
            elif ch == "{":
                self.i += 1
                node = _AnyOf(self._alternatives("{"))
            if node is None:
                text.append(ch)
                self.i += 1
            else:
                flush()
                items.append(node)
        if context == "(":
            raise _ParseError("unclosed group")
        if context == "{":
            raise _ParseError("unclosed alternation")
        flush()
        return _Seq(items), None

    def _alternatives(self, context: str) -> list[_Seq]:
        close = ")" if context == "(" else "}"
        alternatives: list[_Seq] = []
        self.depth += 1
        if self.depth > MAX_GLOB_DEPTH:
            raise _ParseError(f"groups nest more than {MAX_GLOB_DEPTH} deep")
        while True:
            seq, end = self._seq(context)
            alternatives.append(seq)
            if end == close:
                break
        self.depth -= 1
        if context == "{" and len(alternatives) == 1 and not alternatives[0].items:
            return []
        return alternatives

    def _char_class(self) -> str:
        negated = self._peek() in ("!", "^")
        if negated:
            self.i += 1
        parts: list[str] = []
        while True:
            ch = self._peek()
            if not ch:
                raise _ParseError("unclosed character class")
            if ch == "]":
                self.i += 1
                break
            lo = self._class_char()
            if self._peek() == "-" and self._peek(1) not in ("]", ""):
                self.i += 1
                hi = self._class_char()
                if hi < lo:
                    raise _ParseError(f"bad character range `{lo}-{hi}`")
                parts.append(f"{re.escape(lo)}-{re.escape(hi)}")
            else:
                parts.append(re.escape(lo))
        if not parts:
            raise _ParseError("empty character class")
        return "[" + ("^" if negated else "") + "".join(parts) + "]"

    def _class_char(self) -> str:
        ch = self._peek()
        if ch == "\\":
            nxt = self._peek(1)
            if not nxt:
                raise _ParseError("dangling escape `\\`")
            self.i += 2
            return nxt
        self.i += 1
        return ch

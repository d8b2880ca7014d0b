"""Masking secret values out of error texts and log lines, as CI systems mask secrets (``***``).

Why: a state's error text is stored by the state manager (``POST .../state/{id}/errored``,
contract §2.9) where anyone holding the API key can read it back, and the runtime logs it. A node
that raises ``ValueError(f"login failed with {token}")`` would otherwise publish its token. So
the runtime passes every error text it reports, and every line it logs, through a
:class:`Masker` built from the state's secrets (every secret of its graph, contract §2.13) and
its own API key.

Rules, and why:

* **Every common spelling of a value.** Exception texts and pydantic errors often show
  ``repr(value)``; bodies show JSON, URLs percent-encoding. So a value is masked as it is,
  stripped (a token read from a file keeps its newline), ``repr``/``ascii`` escaped (in either
  quote style, and escaped twice as in the repr of a message that quotes it), as the repr of its
  UTF-8 bytes, JSON escaped and percent-encoded. pydantic shows a long ``input_value`` as the
  first 25 and last 24 UTF-8 bytes of its repr around ``...``: both fragments are masked too.
* **Whole spans, not one value after another.** Every occurrence of every spelling is found in
  the original text and each run of overlapping or touching occurrences becomes one ``***``. So
  overlapping secrets (``abcd`` and ``cdef`` in ``abcdef``) vanish whole, where replacing the
  longest value first would leave the rest of the other one visible; a mask is never re-masked.
* **Values shorter than** :data:`MIN_MASKED_LENGTH` **(4) are not masked.** A 1-3 character
  value turns up by chance inside ordinary words, ids and numbers, so masking it everywhere
  mangles the text, and the mangled text discloses the value (the reader sees which letters
  vanished); a secret that short can be guessed anyway. CI systems make the same trade (GitLab,
  for one, refuses to mask variables shorter than 8 characters). Empty values are never masked.
* **Only on error paths.** A state's :class:`Masker` is built when that state errors, from that
  state's secrets alone, and then dropped: an executed state costs nothing, and no state's
  secrets are kept for, or applied to, another's texts.
* **Tracebacks as masked text.** Log handlers format ``exc_info`` themselves (some with each
  frame's local variables), so masking a record's message and arguments is not enough:
  :func:`mask_record` renders the traceback into ``exc_text``, masks it and clears ``exc_info``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import traceback
from collections.abc import Iterable, Iterator
from urllib.parse import quote, quote_plus

__all__ = [
    "MASK",
    "MIN_MASKED_LENGTH",
    "RUNTIME_LOGGERS",
    "Masker",
    "MaskingFilter",
    "mask_record",
    "masked_traceback",
    "masking_logs",
    "spellings",
]

MASK = "***"
MIN_MASKED_LENGTH = 4

#: The loggers the runtime writes to (tests/exo_ref/test_masking.py checks this list is complete).
RUNTIME_LOGGERS = ("exo_ref", "exo_ref.runtime", "exo_ref.workers", "exo_ref.client",
                   "exo_ref.poller")

# pydantic-core (2.x) shows an input whose repr is longer than 50 UTF-8 bytes as the repr's first
# 25 bytes, "...", and its last 24 bytes, dropping a character cut by either limit.
_PYDANTIC_REPR_LIMIT = 50
_PYDANTIC_HEAD = 25
_PYDANTIC_TAIL = 24


def spellings(value: str) -> set[str]:
    """The ways ``value`` is commonly written in an error text (module doc), each masked.

    Empty when ``value`` is shorter than :data:`MIN_MASKED_LENGTH`.
    """
    if len(value) < MIN_MASKED_LENGTH:
        return set()
    quoted = repr(value)
    escaped = quoted[1:-1]
    forms = {
        value,
        value.strip(),
        escaped,
        repr(value + '"')[1:-2],  # single-quote style: a quote inside is escaped as \'
        repr(escaped)[1:-1],
        ascii(value)[1:-1],
        repr(value.encode())[2:-1],
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        quote(value, safe=""),
        quote_plus(value, safe=""),
        *_pydantic_fragments(quoted),
    }
    return {form for form in forms if len(form) >= MIN_MASKED_LENGTH}


def _pydantic_fragments(quoted: str) -> tuple[str, ...]:
    encoded = quoted.encode()
    if len(encoded) <= _PYDANTIC_REPR_LIMIT:
        return ()
    # "ignore" drops the partial character at the cut, as pydantic-core does.
    head = encoded[:_PYDANTIC_HEAD].decode("utf-8", "ignore")
    tail = encoded[-_PYDANTIC_TAIL:].decode("utf-8", "ignore")
    return head[1:], tail[:-1]  # without the repr's quotes, which stay readable


class Masker:
    """Replaces every spelling of the given values by ``***`` (rules in the module doc).

    Build one per failing state; calling it is a substring search per spelling.
    """

    __slots__ = ("_needles",)

    def __init__(self, values: Iterable[str]) -> None:
        needles: set[str] = set()
        for value in values:
            if isinstance(value, str):
                needles |= spellings(value)
        self._needles = sorted(needles, key=len, reverse=True)

    def __bool__(self) -> bool:
        """False when there is nothing to mask (every value empty or short)."""
        return bool(self._needles)

    def __repr__(self) -> str:
        return f"<Masker of {len(self._needles)} spelling(s)>"  # never the values

    def __call__(self, text: str) -> str:
        """``text`` with every span covered by a spelling replaced by one ``***`` per run."""
        spans: list[tuple[int, int]] = []
        for needle in self._needles:
            start = text.find(needle)
            while start >= 0:
                spans.append((start, start + len(needle)))
                start = text.find(needle, start + 1)  # overlapping occurrences too
        if not spans:
            return text
        spans.sort()
        parts: list[str] = []
        kept = 0  # text[kept:] is not yet copied
        begin, end = spans[0]
        for start, stop in spans[1:]:
            if start <= end:  # overlapping or touching: one run
                end = max(end, stop)
                continue
            parts += (text[kept:begin], MASK)
            kept, (begin, end) = end, (start, stop)
        parts += (text[kept:begin], MASK, text[end:])
        return "".join(parts)


def masked_traceback(error: BaseException, masker: Masker) -> str:
    """``error``'s traceback (its causes and notes included) as text, masked."""
    return masker("".join(traceback.format_exception(error)).rstrip("\n"))


_TRACEBACKS = logging.Formatter()


def mask_record(record: logging.LogRecord, masker: Masker) -> None:
    """Mask ``record`` in place: its message, traceback and stack text.

    The message is formatted and masked (``args`` cleared) only when it contained a value, so
    the template survives for handlers that group by it. The traceback always becomes masked
    ``exc_text`` with ``exc_info`` cleared: a formatter that reads ``exc_info`` would render the
    plain text (or the frames' locals) again. Formatters print ``exc_text`` as the traceback.
    """
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a broken log call must not break the caller; drop its args
        record.msg, record.args = masker(str(record.msg)), None
    else:
        masked = masker(message)
        if masked != message:
            record.msg, record.args = masked, None
    if record.exc_info:
        if not record.exc_text:
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)
        record.exc_info = None
    if record.exc_text:
        record.exc_text = masker(record.exc_text)
    if record.stack_info:
        record.stack_info = masker(record.stack_info)


class MaskingFilter(logging.Filter):
    """A logger filter applying :func:`mask_record` (it never drops a record).

    A logger's filters see only the records created on that logger, not its children's: attach
    it to every logger concerned (:func:`masking_logs`).
    """

    def __init__(self, masker: Masker) -> None:
        super().__init__()
        self.masker = masker

    def filter(self, record: logging.LogRecord) -> bool:
        mask_record(record, self.masker)
        return True


@contextlib.contextmanager
def masking_logs(
    values: Iterable[str], loggers: Iterable[str] = RUNTIME_LOGGERS
) -> Iterator[None]:
    """Mask ``values`` in every record of ``loggers`` while the block runs.

    The runtime masks its API key for the length of a run this way; several runtimes in one
    process each add (and remove) their own filter.
    """
    masker = Masker(values)
    if not masker:
        yield
        return
    masking = MaskingFilter(masker)
    targets = [logging.getLogger(name) for name in loggers]
    for target in targets:
        target.addFilter(masking)
    try:
        yield
    finally:
        for target in targets:
            target.removeFilter(masking)

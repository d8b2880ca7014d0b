"""exo_ref._masking: every spelling of a secret becomes ``***`` in texts and log records."""

from __future__ import annotations

import json
import logging
import re
import sys
from pathlib import Path
from typing import NoReturn
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

import exo_ref
from exo_ref._masking import (
    MASK,
    MIN_MASKED_LENGTH,
    RUNTIME_LOGGERS,
    Masker,
    MaskingFilter,
    mask_record,
    masked_traceback,
    masking_logs,
)

TOKEN = "tok-7Hq2-never-shown"


def test_every_occurrence_is_masked() -> None:
    mask = Masker([TOKEN])
    assert mask(f"login failed with {TOKEN}; retry {TOKEN}") == "login failed with ***; retry ***"
    assert mask("nothing to hide") == "nothing to hide"


@pytest.mark.parametrize(
    ("values", "text", "masked"),
    [
        pytest.param(["abcdef", "defghi"], "<abcdefghi>", "<***>", id="partial-overlap"),
        pytest.param(["defghi", "abcdef"], "<abcdefghi>", "<***>", id="overlap-any-order"),
        pytest.param(["token-long", "long"], "token-long, long", "***, ***", id="nested"),
        pytest.param(["abcd"], "abcdabcd abcd", "*** ***", id="touching-runs-once"),
        pytest.param(["aaaa"], "aaaaaa", "***", id="self-overlap"),
        pytest.param(["a***b"], "x a***b ***", "x *** ***", id="a-mask-is-not-re-masked"),
    ],
)
def test_overlapping_values_disappear_whole(values: list[str], text: str, masked: str) -> None:
    assert Masker(values)(text) == masked


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("it's-a \"quoted\"\nsecret", id="quotes-and-newline"),
        pytest.param("tab\tback\\slash-secret", id="escapes"),
        pytest.param("é€-unicode-😀-secret", id="non-ascii"),
        pytest.param("only'single-quote", id="single-quote"),
    ],
)
def test_escaped_spellings_are_masked(value: str) -> None:
    mask = Masker([value])
    texts = {
        "raw": f"login failed with {value}",
        "repr": f"login failed with {value!r}",
        "ascii": f"bad {value!a}",
        "in-a-container-repr": repr({"token": value, "other": [value]}),
        "repr-of-a-quoting-message": repr(ValueError(f"bad {value!r} and it's \"odd\"")),
        "bytes": repr(value.encode()),
        "json": json.dumps({"token": value}),
        "json-unicode": json.dumps({"token": value}, ensure_ascii=False),
        "url": f"https://sm.test/login?token={quote(value, safe='')}",
        "stripped": f"read {value.strip()} from the file",
    }
    for name, text in texts.items():
        masked = mask(text)
        assert MASK in masked, name
        for fragment in (value, repr(value)[1:-1], json.dumps(value)[1:-1]):
            assert fragment not in masked, name


def test_a_value_read_with_its_newline_is_masked_stripped_too() -> None:
    assert Masker([f"  {TOKEN}\n"])(f"token {TOKEN} refused") == "token *** refused"


def test_values_shorter_than_the_minimum_are_left_alone() -> None:
    # Masking "on" everywhere would mangle words and show which letters the secret is.
    assert MIN_MASKED_LENGTH == 4
    mask = Masker(["", "a", "on", "abc"])
    assert not mask
    assert mask("connection abc on") == "connection abc on"
    assert Masker(["abcd"])("abcd abc") == "*** abc"


def test_the_masker_repr_never_shows_the_values() -> None:
    assert TOKEN not in repr(Masker([TOKEN]))


class _Probe(BaseModel):
    n: int


def _validation_text(value: str) -> str:
    try:
        _Probe(n=value)  # type: ignore[arg-type]
    except ValidationError as error:
        return str(error)
    raise AssertionError("validated")


# Characters that never form 4 characters of pydantic's error template, so that the masked text
# can be predicted exactly: only the shown input changes.
_ALPHABET = st.sampled_from(list("xqzXQZ'\"\\\n\t\x00é€😀αβ-~ ."))


@given(value=st.text(_ALPHABET, min_size=MIN_MASKED_LENGTH, max_size=80))
def test_pydantic_input_values_are_masked_even_when_shortened(value: str) -> None:
    text = _validation_text(value)
    shown = text.split("input_value=", 1)[1].rsplit(", input_type=str]", 1)[0]
    quote_char = shown[0]
    shortened = len(repr(value).encode()) > 50  # pydantic shows the head and tail only
    inner = "***...***" if shortened else "***"
    expected = text.replace(shown, f"{quote_char}{inner}{quote_char}")
    assert Masker([value])(text) == expected


def test_a_long_value_shortened_by_pydantic_leaves_no_part_visible() -> None:
    value = "login-token-3b9d51f0a7c2e8d4-6f1a0c9e2b7d3f85-never-logged"
    text = _validation_text(value)
    assert "..." in text  # pydantic shows only the head and the tail
    masked = Masker([value])(text)
    assert "input_value='***...***'" in masked
    assert not any(value[i : i + 8] in masked for i in range(len(value) - 7))


def _raise(error: BaseException) -> NoReturn:
    raise error


def test_a_traceback_is_masked_through_causes_and_notes() -> None:
    error = RuntimeError(f"login failed with {TOKEN!r}")
    error.add_note(f"token was {TOKEN}")
    error.__cause__ = KeyError(TOKEN)
    with pytest.raises(RuntimeError) as raised:
        _raise(error)
    text = masked_traceback(raised.value, Masker([TOKEN]))
    assert "Traceback" in text
    assert "direct cause" in text
    assert TOKEN not in text
    assert text.count(MASK) >= 3


def _record(
    msg: str, *args: object, exc: bool = False, stack: str | None = None
) -> logging.LogRecord:
    exc_info = sys.exc_info() if exc else None
    return logging.LogRecord("exo_ref.workers", logging.ERROR, __file__, 1, msg, args, exc_info,
                             sinfo=stack)


def test_a_record_with_a_value_is_masked_and_one_without_keeps_its_template() -> None:
    mask = Masker([TOKEN])
    record = _record("State %s failed: %s", "s1", f"bad {TOKEN}")
    mask_record(record, mask)
    assert (record.getMessage(), record.args) == ("State s1 failed: bad ***", None)
    clean = _record("State %s failed: %s", "s1", "bad input")
    mask_record(clean, mask)
    assert (clean.msg, clean.args) == ("State %s failed: %s", ("s1", "bad input"))


def test_a_record_traceback_is_masked_and_exc_info_cleared() -> None:
    mask = Masker([TOKEN])
    try:
        _raise(ValueError(f"login failed with {TOKEN}"))
    except ValueError:
        record = _record("Unexpected failure", exc=True, stack=f"Stack (most recent call) {TOKEN}")
    mask_record(record, mask)
    # No formatter can render the exception again: only the masked text is left.
    assert record.exc_info is None
    assert record.exc_text is not None
    assert "ValueError: login failed with ***" in record.exc_text
    rendered = logging.Formatter("%(levelname)s %(message)s").format(record)
    assert "Traceback" in rendered
    assert TOKEN not in rendered
    assert record.stack_info == "Stack (most recent call) ***"


def test_a_record_whose_arguments_do_not_format_is_masked_not_raised() -> None:
    record = _record(f"bad {TOKEN} %d", "not a number")
    mask_record(record, Masker([TOKEN]))
    assert (record.msg, record.args) == ("bad *** %d", None)


def test_masking_logs_masks_every_runtime_logger_for_the_block_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with masking_logs([TOKEN]):
        for name in RUNTIME_LOGGERS:
            try:
                _raise(RuntimeError(f"key {TOKEN} in an error"))
            except RuntimeError:
                logging.getLogger(name).exception("failed with %s", TOKEN)
    assert len(caplog.records) == len(RUNTIME_LOGGERS)
    formatter = logging.Formatter("%(name)s %(message)s")
    for record in caplog.records:
        rendered = formatter.format(record)
        assert "failed with ***" in rendered
        assert "RuntimeError: key *** in an error" in rendered
        assert TOKEN not in rendered
    for name in RUNTIME_LOGGERS:
        assert not any(isinstance(f, MaskingFilter) for f in logging.getLogger(name).filters)


def test_runtime_loggers_lists_every_logger_of_the_package() -> None:
    names: set[str] = set()
    for path in Path(exo_ref.__file__).parent.glob("*.py"):
        names |= set(re.findall(r"getLogger\(\"([\w.]+)\"\)", path.read_text()))
    assert names
    assert names <= set(RUNTIME_LOGGERS)

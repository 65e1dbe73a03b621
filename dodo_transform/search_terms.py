"""The words an event is found by in a search: its webhook id, and the ids, emails and names
its body gives (see store/search.py, which indexes and looks them up).

A module of its own, with nothing of the store in it, so that a sandbox process can work them
out beside running the event's handlers: it has CPU to spare in a burst, when the worker has
none (see transforms/sandbox_processes.py).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import orjson

# Longer values are not ids or names (a URL, a description): not indexed.
MAX_TERM = 200
# An event names at most this many terms: a body with thousands of ids costs no more.
MAX_TERMS = 256
# What a word may be wrapped in, in a name field or a query ("Ada," or '"ada@example.com"').
_PUNCTUATION = "\"'`,;:()[]{}<>"


def event_terms(webhook_id: str, body: bytes | str) -> list[str]:
    """The terms an event is found by: its webhook id, and the string values its body gives
    fields named `id`, `email`, `name` or ending `_id`, `_email`, `_name` (each word; none for
    a body that is not JSON)."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        document = None
    values = [webhook_id]
    if isinstance(document, _CONTAINERS):
        values += _searched_values(document)
    terms = dict.fromkeys(term for value in values for term in words(value))
    return list(terms)[:MAX_TERMS]


def words(text: str) -> Iterator[str]:
    """The words of `text` as they are indexed and searched: lower case, unwrapped."""
    for word in text.lower().split():
        word = word.strip(_PUNCTUATION)
        # Not printable: a NUL or a lone surrogate (from a JSON escape), which no database
        # column of text takes as it is; nobody types one in a search either.
        if 0 < len(word) <= MAX_TERM and word.isprintable():
            yield word


def _searched_values(document: Any) -> list[str]:
    """The values of the searched fields, anywhere in `document` (a loop, not recursion: a
    body nested thousands deep is walked as any other)."""
    found: list[str] = []
    stack = [document]
    while stack:
        value = stack.pop()
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(item, str):
                if isinstance(key, str) and _is_searched(key):
                    found.append(item)
            elif isinstance(item, _CONTAINERS):
                stack.append(item)
    return found


_CONTAINERS = (dict, list)


@functools.lru_cache(maxsize=4096)
def _is_searched(key: str) -> bool:
    """Whether a field's value is searched: a webhook's keys are few and repeat, so each is
    decided once."""
    key = key.lower()
    return key in ("id", "email", "name") or key.endswith(("_id", "_name", "_email"))

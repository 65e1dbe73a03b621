"""The QuickJS sandbox: the only module that touches the `quickjs` binding.

A `Sandbox` is one QuickJS runtime holding one compiled transform. It has no
network, file system, timers, `require` or host callbacks: the binding offers
none, and we register none. `sandbox.js` runs first in every runtime; it keeps
events from seeing each other's state (see its header) at a cost of a few
microseconds per event instead of the ~200 us a fresh runtime costs. The web
platform it installs (Intl, URL, TextEncoder, ...) is kept in `web_platform/`,
a file per API, and joined into it here, once per process.

Threads: a QuickJS runtime must only ever be used by the thread that created
it, so a `Sandbox` is not thread-safe. `engine.Transform` keeps one per thread.

The time-limit trap: the binding's limit is measured with C `clock()`, the CPU
time of the whole process, so other threads (or a busy event loop) use up a
handler's budget. `Sandbox.run` measures the handler's own thread CPU time;
when the binding interrupts a handler that has not yet used its own budget,
the run is repeated with the process budget scaled by the contention it saw.
Re-running is safe because each run starts from the same clean state (in a new
runtime: the interrupted run may have left promise jobs queued).

Async handlers and promise jobs: QuickJS runs a job only when the host asks, so
`Sandbox.run` runs them all, after the handler returns and before the next event:
an async handler's promise settles (or is reported as never settling), and jobs
a plain handler left behind run in their own event. The binding restarts its
clock for every job; `_drain` gives each one only what is left of the run's
budget, so the limit covers the handler and all its jobs together.

`throw null` or out of memory: QuickJS throws a bare null when it cannot even
allocate the error for an out-of-memory failure. The prelude's canary (see
sandbox.js) tells the two apart; a run that killed it leaves QuickJS's
collection threshold higher, so the next run starts in a new runtime.

Positions: an error names `file:line:col` inside the transform's own file, the
column in characters (QuickJS counts UTF-8 bytes). The transform is compiled as
the body of a factory function (see sandbox.js), whose closing text follows the
file's: a file that ends inside something it opened (a `{`, a `(`), or closes
the factory early (a `}` too many), makes QuickJS complain about that text.
Such a file is compiled again alone, as a script with nothing after it and
running none of it, and QuickJS's position there is inside the file or its end.
"""

from __future__ import annotations

import contextlib
import json
import re
import textwrap
import time
from functools import cached_property
from importlib import resources
from typing import Any

import orjson
import quickjs

from dodo_transform.errors import HandlerError
from dodo_transform.limits import Limits

# The web platform (Intl, toLocale*String, URL, TextEncoder, structuredClone, atob ...: see
# sandbox.js) in the order its files are joined: each uses what the ones before it define.
WEB_PLATFORM_FILES = (
    "shared.js",  # errors that name the handler's line, options, locales
    "numbers.js",  # Intl.NumberFormat
    "dates.js",  # time zones, Intl.DateTimeFormat
    "intl.js",  # the Intl object, toLocale*String of dates, numbers and bigints
    "text.js",  # TextEncoder, TextDecoder
    "base64.js",  # DOMException, atob, btoa
    "structured_clone.js",
    "url.js",  # URL, URLSearchParams
)
_WEB_PLATFORM_MARK = "    __DODO_WEB_PLATFORM__\n"


def _prelude_template() -> str:
    """sandbox.js with the web platform's files joined in at its mark, in order, a blank line
    apart and indented into `__dodo_installWebPlatform`, whose closure they share."""
    here = resources.files("dodo_transform.transforms")
    texts = [here.joinpath("web_platform", name).read_text("utf-8") for name in WEB_PLATFORM_FILES]
    core = here.joinpath("sandbox.js").read_text("utf-8")
    return core.replace(_WEB_PLATFORM_MARK, "\n".join(textwrap.indent(t, "    ") for t in texts))


_PRELUDE_TEMPLATE = _prelude_template()
# `new Function(body)` puts the body two lines below the start of its source.
_FACTORY_LINE_OFFSET = 2
# Compiles the source as a script of its own and runs none of it: nothing follows the file's
# text, so QuickJS's position for a file that ends too soon is the file's end. Sloppy, as a
# file without "use strict" is (a strict file's own errors inside it are found first anyway).
_COMPILE_ONLY = "throw 0;\n"
_COMPILE_ONLY_LINE_OFFSET = 1
_CLOSERS = (("{", "}"), ("(", ")"), ("[", "]"))
_OPENERS = {closer: opener for opener, closer in _CLOSERS}
_END_OF_FILE = "SyntaxError: unexpected end of file"
_FRAME = re.compile(r"^\s*at (?:(?P<func>[^(]*?) )?\(?<input>:(?P<line>\d+):(?P<col>\d+)\)?\s*$")
_MAX_ATTEMPTS = 4
# What run() answers instead of a report: the handler's promise waits for its jobs; the
# global keeps what the last event added (the runtime must be replaced).
_PENDING = '{"pending":true}'
_TAINTED = '{"tainted":true}'
NEVER_SETTLED = (
    "the handler's promise never settled: no timers or network here; await only what "
    "resolves without them, or return the webhook"
)
_STACK_OVERFLOW = "Maximum call stack size exceeded"
_ERROR_HEADLINE = re.compile(r"^[A-Za-z]*Error\b")
_ABSENT = ("require", "fetch", "XMLHttpRequest", "setTimeout", "setInterval", "process", "Deno")


# What `__dodo_run` takes: event type, body, default url, env (JSON), max requests, mode ("": not
# known).
_Args = tuple[str, str, str, str, int, str]


class SandboxBroken(HandlerError):
    """A run hit a time, memory or stack limit: the runtime is not to be trusted after it."""


class Sandbox:
    """One QuickJS runtime with the prelude and one transform's source compiled in it."""

    def __init__(self, source: str, filename: str, limits: Limits) -> None:
        self.filename = filename
        self.limits = limits
        self._source = source
        self._start()

    def _start(self) -> None:
        """A new runtime: the prelude, the transform's source, then the canary's calibration."""
        limits = self.limits
        context, entry = self._compiled()
        try:
            has_handler = entry("load")()
            # The top level may queue promise jobs: they run now, not in the first event.
            _drain(context, _Clock(limits.time_seconds, limits.time_seconds))
        except quickjs.JSException as error:
            raise HandlerError(self.explain(error)) from None
        context.set_time_limit(limits.time_seconds)
        if not has_handler:
            raise HandlerError(
                f"{self.filename}: no handler function: declare "
                "`function handler(webhook) { ... return webhook; }`"
            )
        entry("calibrate")(limits.memory_bytes // 3)
        self._context, self._run, self._logs = context, entry("run"), entry("logs")
        self._settle = entry("settle")
        self._stale = False

    def _compiled(self) -> tuple[quickjs.Context, Any]:
        """A new runtime with the prelude and the source compiled in it, none of it run;
        `HandlerError` if the source does not compile."""
        limits = self.limits
        context = quickjs.Context()
        context.set_memory_limit(limits.memory_bytes)
        context.set_max_stack_size(limits.stack_bytes)
        context.set_time_limit(limits.time_seconds)
        prelude = _PRELUDE_TEMPLATE.replace("__DODO_LOG_LIMIT__", str(limits.log_bytes))
        # The prelude's value is the only way to its entry points: none is a global.
        entry = context.eval(prelude)
        try:
            entry("compile")(self._source)
        except quickjs.JSException as error:
            raise HandlerError(self._compile_error(error)) from None
        return context, entry

    @classmethod
    def compile_error(cls, source: str, filename: str, limits: Limits) -> str | None:
        """Why `source` does not compile as a transform (`file:line:col ...`), or None. Runs
        none of its code, so it is safe outside a sandbox process."""
        # A Sandbox without a runtime of its own: only its way of explaining errors is used.
        sandbox = cls.__new__(cls)
        sandbox.filename, sandbox.limits, sandbox._source = filename, limits, source
        try:
            sandbox._compiled()
        except HandlerError as error:
            return str(error)
        return None

    def run(
        self,
        event_type: str,
        body: str,
        url: str,
        env_json: str,
        max_requests: int = 100,
        mode: str | None = None,
    ) -> dict[str, Any]:
        """Run the handler once, its promise jobs included; return the prelude's report (see
        sandbox.js `__dodo_run` and `__dodo_settle`).

        A handler that throws (or whose promise rejects) gives a report with `error`, the
        message explained. Raises `SandboxBroken` when a limit was hit: the caller must
        discard this sandbox.
        """
        if self._stale:
            # Failing that (a time limit while loading, under contention), the old runtime
            # serves: its state is as clean, only its canary is less sure. Next event retries.
            with contextlib.suppress(HandlerError):
                self._start()
        args = (event_type, body, url, env_json, max_requests, mode or "")
        budget = self.limits.time_seconds
        for attempt in range(_MAX_ATTEMPTS):
            if attempt:
                # The interrupted attempt may have left promise jobs queued: a new runtime.
                try:
                    self._start()
                except HandlerError:
                    raise SandboxBroken(self.explain("InternalError: interrupted")) from None
                self._context.set_time_limit(budget)
            clock = _Clock(self.limits.time_seconds, budget)
            try:
                report = self._attempt(clock, args)
            except quickjs.JSException as error:
                own = clock.used()
                if own >= self.limits.time_seconds * 0.9:
                    raise SandboxBroken(self.explain(error)) from None
                # The process clock reached `budget` while this thread used only `own`: other
                # threads ate the rest. Scale the budget by that contention and run again.
                contention = budget / max(own, 1e-4)
                budget = self.limits.time_seconds * max(contention, 1.0) * 1.25
            else:
                self._context.set_time_limit(self.limits.time_seconds)
                return report
        self._context.set_time_limit(self.limits.time_seconds)
        raise SandboxBroken(self.explain("InternalError: interrupted"))

    def _attempt(self, clock: _Clock, args: _Args) -> dict[str, Any]:
        """One try at the run: the handler, its promise jobs, the report. Raises the
        binding's interrupt (the caller tells a limit from contention) and `SandboxBroken`."""
        try:
            report = self._report(clock, args)
        except quickjs.JSException as error:
            if _is_interrupt(error):
                raise
            report = self._thrown(error)
        # Jobs queued and never awaited (or queued by a throwing handler) run in their event;
        # an error one of them throws outside any promise is the event's error.
        while True:
            try:
                ran = _drain(self._context, clock)
            except quickjs.JSException as error:
                if _is_interrupt(error):
                    raise
                report = self._thrown(error)
            else:
                return self._with_late_logs(report) if ran else report

    def _with_late_logs(self, report: dict[str, Any]) -> dict[str, Any]:
        """The report, with what jobs that ran after it printed, and whether they used so much
        memory that the next event needs a new runtime (see the canary in sandbox.js)."""
        late: dict[str, Any] = json.loads(self._logs())
        self._stale = self._stale or late["collected"]
        return report | {"logs": late["logs"], "logsTruncated": late["logsTruncated"]}

    def _report(self, clock: _Clock, args: _Args) -> dict[str, Any]:
        text = self._run(*args)
        if text == _TAINTED:
            # The last event left the global in a state that cannot be undone.
            try:
                self._start()
            except HandlerError as error:
                return {"error": str(error), "logs": [], "logsTruncated": False}
            text = self._run(*args)
        if text == _PENDING:
            _drain(self._context, clock)
            text = self._settle(args[4])  # max_requests
        report: dict[str, Any] = _parsed(text)
        report["bytes"] = len(text)
        self._stale = report.pop("collected")
        if report.pop("neverSettled", False):
            if self._stale:
                # The jobs ran out with the canary dead: memory ran out inside one, where
                # QuickJS turns it into a rejection nobody hears (the settling reaction's own),
                # so the promise only looks unsettled.
                raise SandboxBroken(self.explain("out of memory"))
            report["error"] = f"{self.filename}: {NEVER_SETTLED}"
        return report

    def _thrown(self, error: quickjs.JSException) -> dict[str, Any]:
        headline = str(error).split("\n", 1)[0]
        if "out of memory" in headline or _STACK_OVERFLOW in headline:
            raise SandboxBroken(self.explain(error)) from None
        try:
            report: dict[str, Any] = json.loads(self._logs())
        except quickjs.JSException as failure:
            # The runtime cannot even hand over its logs: it is out of time or out of memory.
            cause = failure if _is_interrupt(failure) else "out of memory"
            raise SandboxBroken(self.explain(cause)) from None
        self._stale = collected = report.pop("collected")
        if headline == "InternalError" and collected:
            # Out of memory while building the error: QuickJS got the object but not its
            # message. Only under memory pressure (the canary died): a handler's own
            # `throw new InternalError()` leaves it alive.
            raise SandboxBroken(self.explain("out of memory"))
        if headline in ("null", "undefined"):
            if headline == "null" and collected:
                raise SandboxBroken(self.explain("out of memory"))
            report["error"] = f"{self.filename}: handler threw {headline}"
        else:
            report["error"] = self.explain(error)
        return report

    def explain(self, error: BaseException | str) -> str:
        """Turn a QuickJS error into `file:line:col Name: message`, with what to do for limits."""
        headline, *frames = str(error).strip().splitlines() or ["unknown error"]
        if "interrupted" in headline:
            return (
                f"{self.filename}: time limit of {self.limits.time_seconds:g} s exceeded "
                "(an endless loop? make the handler return sooner or raise the limit)"
            )
        if "out of memory" in headline:
            return (
                f"{self.filename}: memory limit of {self.limits.memory_bytes // (1024 * 1024)} MB "
                "exceeded (the handler builds something too large)"
            )
        if _STACK_OVERFLOW in headline:
            return f"{self.filename}: stack overflow (endless recursion?): {headline}"
        if not _ERROR_HEADLINE.match(headline):
            headline = (
                f"uncaught exception: {headline}"  # `throw "text"`: no Error object, no stack
            )
        if headline.startswith("ReferenceError") and any(name in headline for name in _ABSENT):
            headline += " (the sandbox has no network, modules, timers or file access)"
        at = _position(frames, _FACTORY_LINE_OFFSET)
        if at is None:
            return f"{self.filename}: {headline}"
        line, column = self._text.inside(at) or at
        return f"{self.filename}:{line}:{column} {headline}"

    def _compile_error(self, error: quickjs.JSException) -> str:
        """Why the source does not compile, at a position inside the file."""
        headline, *frames = str(error).strip().splitlines() or ["unknown error"]
        if not headline.startswith("SyntaxError"):
            return self.explain(error)  # a limit, while compiling
        at = self._text.inside(_position(frames, _FACTORY_LINE_OFFSET))
        if at is None:  # QuickJS read on past the file, into the factory's closing text
            return self._past_the_end(headline)
        return f"{self.filename}:{at[0]}:{at[1]} {_reworded(headline, self._text, at)}"

    def _past_the_end(self, headline: str) -> str:
        """The file ends inside something it opened, or closes what the factory opened (a `}`
        too many). Compiled alone, with nothing after its text, QuickJS says which, and where."""
        text = self._text
        headline, alone = _compiled_alone(self._source, self.limits) or (headline, None)
        at = text.inside(alone)
        if at is None:
            what = _unclosed(self._source, self.limits)
            return f"{self.filename}:{text.end[0]}:{text.end[1]} {_END_OF_FILE}: {what}"
        stray = text.lines[at[0] - 1][at[1] - 1 : at[1]]
        if stray in _OPENERS:
            headline = f"SyntaxError: Unexpected token '{stray}': no `{_OPENERS[stray]}` is open"
        return f"{self.filename}:{at[0]}:{at[1]} {headline}"

    @cached_property
    def _text(self) -> _Text:
        return _Text(self._source)


class _Text:
    """A transform's source as QuickJS's positions point into it."""

    def __init__(self, source: str) -> None:
        lines = source.split("\n")
        # A final line break ends the last line; it does not start another.
        self.lines = lines[:-1] if len(lines) > 1 and lines[-1] == "" else lines
        self.end = (len(self.lines), len(self.lines[-1].removesuffix("\r")) + 1)

    def inside(self, at: tuple[int, int] | None) -> tuple[int, int] | None:
        """QuickJS's (line, column in UTF-8 bytes) as (line, column in characters), if that is
        before the end of the text."""
        if at is None or not 1 <= at[0] <= len(self.lines):
            return None
        line, column = at
        text = self.lines[line - 1]
        if not text.isascii():
            column = len(text.encode("utf-8")[: column - 1].decode("utf-8", "ignore")) + 1
        return (line, column) if (line, column) < self.end else None


def _position(frames: list[str], line_offset: int) -> tuple[int, int] | None:
    """The first stack frame inside the user's code: its line in the file, its column in bytes."""
    for frame in frames:
        match = _FRAME.match(frame)
        if not match or (match["func"] or "").startswith("__dodo"):
            continue
        line = int(match["line"]) - line_offset
        if line >= 1:
            return line, int(match["col"])
    return None


def _compiled_alone(source: str, limits: Limits) -> tuple[str, tuple[int, int] | None] | None:
    """QuickJS's SyntaxError for `source` compiled as a script of its own, in a runtime of its
    own, running none of it; None when it compiles."""
    context = quickjs.Context()
    context.set_memory_limit(limits.memory_bytes)
    context.set_max_stack_size(limits.stack_bytes)
    context.set_time_limit(limits.time_seconds)
    try:
        context.eval(_COMPILE_ONLY + source)
    except quickjs.JSException as error:
        headline, *frames = str(error).strip().splitlines() or [""]
        if headline.startswith("SyntaxError"):
            return headline, _position(frames, _COMPILE_ONLY_LINE_OFFSET)
    return None


def _unclosed(source: str, limits: Limits) -> str:
    """What a file that ends too soon left open: the closer that QuickJS takes next says."""
    for opener, closer in _CLOSERS:
        closed = f"{source}\n{closer}"
        found = _compiled_alone(closed, limits)
        if found is None:
            return f"a `{opener}` is not closed (a `{closer}` is missing)"
        if _Text(closed).inside(found[1]) is None:  # taken, and the file still ends too soon
            return (
                f"a `{opener}` is not closed, nor what encloses it "
                f"(a `{closer}` is missing, then more)"
            )
    return "the last statement is not finished, or a `{`, `(` or `[` is not closed"


def _reworded(headline: str, text: _Text, at: tuple[int, int]) -> str:
    """QuickJS's words for an unclosed string, template literal or comment, said plainly."""
    line, column = at
    opener = text.lines[line - 1][column - 1 : column]
    if headline == "SyntaxError: unexpected end of string" and opener in ("'", '"'):
        return f"SyntaxError: unterminated string: the {opener} here is not closed on its line"
    if headline == "SyntaxError: unexpected end of string" and opener in ("`", "}"):
        return "SyntaxError: unterminated template literal: its closing ` is missing"
    if headline == "SyntaxError: unexpected end of comment":
        return "SyntaxError: unterminated comment: the /* here has no closing */"
    return headline


class _Clock:
    """One run's time: the handler's own CPU time against its limit, and how much the process
    clock the binding counts runs ahead of it (`budget / limit`, contention)."""

    def __init__(self, limit: float, budget: float) -> None:
        self.limit = limit
        self.scale = budget / limit
        self.start = time.thread_time()

    def used(self) -> float:
        return time.thread_time() - self.start


def _drain(context: quickjs.Context, clock: _Clock) -> int:
    """Run the promise jobs queued so far, and those they queue, inside what is left of the
    run's time; how many ran. The binding restarts its clock for every job, so each one is
    given only the rest; an interrupt is raised as the binding raises it."""
    ran = 0
    while True:
        left = clock.limit - clock.used()
        if left <= 0:
            raise quickjs.JSException("InternalError: interrupted")
        context.set_time_limit(left * clock.scale)
        if not context.execute_pending_job():
            return ran
        ran += 1


def _parsed(report: str) -> Any:
    """A report from the prelude, read: by orjson, several times quicker for every event, and
    by the standard library where a string holds a lone surrogate (escaped by JSON.stringify),
    which orjson refuses and Python's strings keep, or where a number may be an integer past
    64 bits, which orjson reads as a float (its digits then change when it is written again)."""
    try:
        text = report.encode()
    except UnicodeEncodeError:  # a raw lone surrogate
        return json.loads(report)
    if _LONG_NUMBER not in text.translate(_DIGITS_AS_ZERO):
        with contextlib.suppress(orjson.JSONDecodeError):
            return orjson.loads(text)
    return json.loads(report)


# 19 digits in a row (an integer that may not fit in 64 bits, or digits inside a string, read
# the slower way for nothing), found with a byte table: a regular expression costs more than
# the standard library's whole parse.
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_NUMBER = b"0" * 19


def _is_interrupt(error: BaseException) -> bool:
    return "interrupted" in str(error).split("\n", 1)[0]

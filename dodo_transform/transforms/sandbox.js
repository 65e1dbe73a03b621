// Evaluated once in every new QuickJS runtime, before any user code.
//
// Its value is the host's only way in: a function that hands out the entry
// points by name. compile(source) compiles a transform, load() runs its top
// level, run(...) runs it for one event, logs() tells what a run that threw had
// printed, calibrate(bytes) is explained below with the canary. None of them is
// a global, so a handler cannot call them (to recompile itself, say):
// sandbox.py takes them right after this file runs and holds the only
// references. Everything else lives in this closure, out of reach too.
//
// Isolation between events, without paying for a fresh runtime per event:
// - top-level variables: the transform's source is compiled once, in strict
//   mode, as the body of a factory function, and the factory is called again
//   for every event, so each event gets fresh top-level bindings; assigning an
//   undeclared name is a ReferenceError (sloppy mode would silently drop it);
// - built-ins and globalThis: every intrinsic is frozen up front, the ones
//   reachable from globalThis and the ones only engine-made objects lead to
//   (iterator, generator and async function prototypes, ...), and globalThis
//   itself is made read-only and non-extensible, so there is nowhere an event
//   can leave state behind;
// - engine settings: the two that live outside any object, Error's stack
//   hooks, are pinned (see __dodo_pinStackHooks).
//
// Before the freeze, the web platform a handler written for V8 expects is
// installed (Intl, toLocale*String, URL, TextEncoder, structuredClone, ...: the
// files of web_platform/), so it is frozen like every other built-in. Its
// cost (mostly compiling it, about 3 ms) is paid once per runtime, not per event.
"use strict";
(function (global) {
  const LOG_LIMIT = __DODO_LOG_LIMIT__;
  const InternalErrorClass = global.InternalError;
  let logs = [];
  let logBytes = 0;
  let logsTruncated = false;
  let factory = null;
  let canary = null;

  function __dodo_show(value) {
    if (typeof value === "string") return value;
    try {
      const text = JSON.stringify(value);
      return text === undefined ? String(value) : text;
    } catch (_) {
      try { return String(value); } catch (_) { return "[unprintable]"; }
    }
  }

  function __dodo_capture(level) {
    return function __dodo_console(...args) {
      if (logsTruncated) return;
      let line = args.map(__dodo_show).join(" ");
      if (logBytes + line.length > LOG_LIMIT) {
        line = line.slice(0, Math.max(0, LOG_LIMIT - logBytes));
        logsTruncated = true;
      }
      logBytes += line.length;
      logs.push([level, line]);
    };
  }

  // Assigning an inherited, frozen data property (obj.toString = f) throws in
  // strict code: the "override mistake". Turning these few common ones into
  // accessors keeps ordinary code working after the freeze.
  function __dodo_allowOverride(proto, name) {
    const desc = Object.getOwnPropertyDescriptor(proto, name);
    if (!desc || !("value" in desc)) return;
    const value = desc.value;
    Object.defineProperty(proto, name, {
      get() { return value; },
      set(replacement) {
        if (this === proto) throw new TypeError("Cannot assign to read only property '" + name + "'");
        Object.defineProperty(this, name, {
          value: replacement, writable: true, enumerable: true, configurable: true,
        });
      },
      enumerable: desc.enumerable,
      configurable: false,
    });
  }

  // Intrinsics no property path from globalThis leads to: only objects the
  // engine makes inherit from them. Each entry is one such object's prototype;
  // the walk goes on from there (constructor, prototype, the prototype's own
  // prototype), so %GeneratorFunction%, %GeneratorPrototype%,
  // %IteratorPrototype%, %AsyncIteratorPrototype% and the like come along.
  // Not listed: %AsyncFromSyncIteratorPrototype%, which QuickJS never hands to
  // JavaScript, and the CallSite prototype, which only Error.prepareStackTrace
  // sees and which is pinned to undefined. Bound, arrow and class functions
  // inherit from Function.prototype, and %TypedArray% and %ThrowTypeError% are
  // reachable already; they are listed so that nothing rests on that.
  function __dodo_hiddenIntrinsics() {
    const protoOf = Object.getPrototypeOf;
    const done = { next() { return { done: true, value: undefined }; } };
    return [
      protoOf([][Symbol.iterator]()),
      protoOf(new Map()[Symbol.iterator]()),
      protoOf(new Set()[Symbol.iterator]()),
      protoOf(""[Symbol.iterator]()),
      protoOf(/x/g[Symbol.matchAll]("")),
      protoOf([].values().map((x) => x)),
      protoOf(Iterator.from(done)),
      protoOf(function* () {}),
      protoOf(async function () {}),
      protoOf(async function* () {}),
      protoOf(Int8Array),
      protoOf(function () {}.bind(null)),
      protoOf(() => {}),
      Object.getOwnPropertyDescriptor(function () { return arguments; }.call(), "callee").get,
    ];
  }

  function __dodo_reachableFrom(roots) {
    const seen = new Set();
    const stack = [...roots];
    while (stack.length > 0) {
      const item = stack.pop();
      if (item === null || (typeof item !== "object" && typeof item !== "function")) continue;
      if (seen.has(item)) continue;
      seen.add(item);
      stack.push(Object.getPrototypeOf(item));
      for (const key of Reflect.ownKeys(item)) {
        const desc = Reflect.getOwnPropertyDescriptor(item, key);
        if ("value" in desc) stack.push(desc.value);
        else stack.push(desc.get, desc.set);
      }
    }
    return seen;
  }

  // Error.prepareStackTrace and Error.stackTraceLimit are accessors over
  // engine state, so freezing Error leaves them settable and what one event
  // sets, the next inherits. Pinned rather than reset before each run: it is
  // free per event, it matches every other frozen built-in (assigning throws a
  // TypeError, the handler's own error), and no handler code ever runs inside
  // the engine's error construction. A hook that throws or loops there turns an
  // out-of-memory or time-limit error into a bare null, and a hook that
  // rewrites frames misleads the error locations the host reports.
  function __dodo_pinStackHooks() {
    for (const name of ["prepareStackTrace", "stackTraceLimit"]) {
      const desc = Object.getOwnPropertyDescriptor(Error, name);
      if (desc === undefined) continue;
      Object.defineProperty(Error, name, {
        value: Error[name], writable: false, enumerable: desc.enumerable, configurable: false,
      });
    }
  }

  function __dodo_lockDown() {
    for (const name of ["toString", "valueOf", "constructor", "hasOwnProperty",
                        "toLocaleString", "isPrototypeOf", "propertyIsEnumerable"]) {
      __dodo_allowOverride(Object.prototype, name);
    }
    for (const name of ["name", "message", "toString", "constructor"]) {
      __dodo_allowOverride(Error.prototype, name);
    }
    __dodo_allowOverride(Function.prototype, "toString");
    __dodo_pinStackHooks();
    for (const item of __dodo_reachableFrom([global, ...__dodo_hiddenIntrinsics()])) {
      if (item !== global) Object.freeze(item);
    }
    for (const key of Reflect.ownKeys(global)) {
      const desc = Reflect.getOwnPropertyDescriptor(global, key);
      if ("value" in desc) desc.writable = false;
      desc.configurable = false;
      Object.defineProperty(global, key, desc);
    }
    Object.preventExtensions(global);
  }

  // Telling `throw null` from running out of memory. When QuickJS cannot
  // allocate even the error object for an out-of-memory failure it throws a
  // bare null, the very value `throw null` gives the host. What differs is the
  // memory the event used. A collection QuickJS triggers at live size S sets
  // the next trigger at 1.5 S, so calibrate(limit / 3) (holding a third of the
  // limit while an object is allocated) puts the trigger at about half the
  // limit. The canary, a WeakRef to an unreachable cycle, dies in the next
  // collection. An event that runs out of memory passes the trigger, at the
  // latest when QuickJS creates the out-of-memory error object (which is why
  // internalErrorShape is held: with that object's shape cached, creating the
  // error gets as far as the allocation that triggers the collection), so a
  // null with a live canary is the handler's own. A collection raises the
  // trigger again; the host replaces a runtime once an event has killed the
  // canary, before the trigger can climb past the limit.
  const internalErrorShape = Object.create(InternalErrorClass.prototype);

  function __dodo_plantCanary() {
    const ring = {};
    ring.ring = ring;
    canary = new WeakRef(ring);
  }

  function __dodo_collected() {
    void internalErrorShape; // held for as long as the canary is read
    return canary.deref() === undefined;
  }

  function __dodo_calibrate(bytes) {
    const ballast = new ArrayBuffer(bytes);
    __dodo_plantCanary(); // allocates, so the collection runs here, with the ballast held
    return ballast.byteLength;
  }

  function __dodo_isOutOfMemory(error) {
    return error === null
      || (error instanceof InternalErrorClass && error.message === "out of memory");
  }

  // Each field of a returned webhook is read once, here, so a getter cannot
  // show the checks one value and the request another.
  function __dodo_fields(result) {
    if (result === null) return { type: "null" };
    if (Array.isArray(result)) return { type: "array" };
    if (typeof result !== "object") return { type: typeof result };
    return {
      type: "object",
      method: result.method,
      url: result.url,
      cancel: result.cancel,
      headers: result.headers,
      payload: result.payload,
    };
  }

  // The payload is serialised once, and its type is that of what was
  // serialised: an object whose toJSON gives undefined has nothing to send.
  function __dodo_serialise(fields) {
    if (fields.type !== "object") return JSON.stringify(fields);
    const payload = fields.payload;
    const text = JSON.stringify(payload);
    fields.payload = undefined; // left out below; its text is spliced in instead
    fields.payloadType = text === undefined && typeof payload === "object" ? "undefined" : typeof payload;
    const json = JSON.stringify(fields);
    return text === undefined ? json : json.slice(0, -1) + ',"payload":' + text + "}";
  }

  function __dodo_outcome(eventType, body, url, env, maxRequests) {
    const handler = factory();
    if (typeof handler !== "function") return { missingHandler: true };
    const webhook = {
      method: "POST", url, eventType, payload: JSON.parse(body),
      cancel: false, headers: {}, env: env === "{}" ? {} : JSON.parse(env),
    };
    const result = handler(webhook);
    if (!Array.isArray(result)) return { fanOut: false, items: [__dodo_fields(result)] };
    // Over the limit, nothing is read or serialised: the count is the whole answer.
    if (result.length > maxRequests) return { tooMany: result.length };
    const items = [];
    for (let index = 0; index < result.length; index++) items.push(__dodo_fields(result[index]));
    return { fanOut: true, items };
  }

  // join() makes one flat string; `+` may make a rope, which the binding
  // cannot read back.
  function __dodo_report(head) {
    return [head, ',"logs":', JSON.stringify(logs), ',"logsTruncated":', logsTruncated,
            ',"collected":', __dodo_collected(), "}"].join("");
  }

  function __dodo_finish(outcome) {
    if (outcome.missingHandler) return __dodo_report('{"missingHandler":true');
    if (outcome.tooMany) return __dodo_report('{"tooMany":' + outcome.tooMany);
    let items;
    try {
      items = outcome.items.map(__dodo_serialise).join(",");
    } catch (error) {
      // Out of memory is the limit, not the webhook's shape: the host must see it.
      if (__dodo_isOutOfMemory(error)) throw error;
      let reason;
      try { reason = String(error); } catch (_) { reason = "[unprintable]"; }
      return __dodo_report('{"unserialisable":' + JSON.stringify(reason));
    }
    return __dodo_report('{"fanOut":' + outcome.fanOut + ',"items":[' + items + "]");
  }

  // A throw (the handler's, or a limit) propagates to the host, which then
  // asks logs() for what the handler printed before it.
  function __dodo_run(eventType, body, url, env, maxRequests) {
    logs = [];
    logBytes = 0;
    logsTruncated = false;
    if (__dodo_collected()) __dodo_plantCanary();
    return __dodo_finish(__dodo_outcome(eventType, body, url, env, maxRequests));
  }

  function __dodo_logs() {
    return JSON.stringify({ logs, logsTruncated, collected: __dodo_collected() });
  }

  // Two steps, so that the host knows a SyntaxError from the first for the file's own syntax
  // (its position may be in the closing text after the file: see sandbox.py), and one from
  // the second for an error the file's top level threw.
  function __dodo_compile(source) {
    factory = new Function("\"use strict\";\n" + source
      + "\n;return typeof handler === \"function\" ? handler : undefined;");
  }

  function __dodo_load() {
    return typeof factory() === "function";
  }

  // A line in the handler's console output from the prelude itself, once per event.
  const __dodo_warn = __dodo_capture("warn");
  function __dodo_note(text) {
    const line = "[dodo-transform] " + text;
    if (!logs.some((entry) => entry[1] === line)) __dodo_warn(line);
  }

  // ---------------------------------------------------------------------------------------
  // The web platform a handler written for V8 may use, which QuickJS lacks or does
  // differently: Intl.DateTimeFormat and Intl.NumberFormat, the toLocale*String methods of
  // dates and numbers, URL, URLSearchParams, TextEncoder, TextDecoder, structuredClone, atob
  // and btoa. They give what V8 (Node.js, Svix) gives for the en-US locale; another locale is
  // formatted as en-US (as V8 built without full ICU data does) and a console line says so.
  // Time zones: the runtime's own (the process's), UTC, fixed offsets, and the zones of ZONES
  // (dates.js) with today's daylight-saving rules. What they cannot do (another calendar, a
  // unit style, a time zone not listed) throws a RangeError naming it, never a quiet difference.
  //
  // Installed once per runtime, before the lockdown freezes them with every other
  // intrinsic. Their state lives in private fields of the objects a handler makes, never in
  // this closure, so nothing one event does is seen by the next. Errors they throw carry a
  // stack without their own frames (__dodo_fail), so that the host reports the handler's
  // line, not one of the prelude's. Their code is web_platform/*.js: sandbox.py joins those
  // files in where __DODO_WEB_PLATFORM__ stands below, in the order it lists them.
  function __dodo_installWebPlatform(global, note) {
    const REGION = [__dodo_lineHere(), 0];
    const hidden = []; // tables only this closure holds, frozen with the intrinsics

    __DODO_WEB_PLATFORM__

    const globals = { URL, URLSearchParams, TextEncoder, TextDecoder, DOMException, structuredClone, atob, btoa };
    for (const name of Object.keys(globals)) {
      Object.defineProperty(global, name, { value: globals[name], writable: true, configurable: true });
    }
    REGION[1] = __dodo_lineHere();
    return hidden;
  }

  // The line this is called from, in the prelude: bounds of the web platform's code.
  function __dodo_lineHere() {
    const frames = String(new Error().stack).split("\n");
    return +/<input>:(\d+):/.exec(frames[1])[1];
  }

  const console = {
    log: __dodo_capture("log"), info: __dodo_capture("info"), warn: __dodo_capture("warn"),
    error: __dodo_capture("error"), debug: __dodo_capture("debug"),
  };
  Object.defineProperty(global, "console", {
    value: console, writable: false, enumerable: false, configurable: false,
  });
  // Never handed to a handler; frozen all the same, so that a slip could not leak state.
  for (const table of __dodo_installWebPlatform(global, __dodo_note)) Object.freeze(table);
  __dodo_lockDown();
  __dodo_plantCanary();
  const entries = {
    compile: __dodo_compile, load: __dodo_load, run: __dodo_run, logs: __dodo_logs,
    calibrate: __dodo_calibrate,
  };
  return function __dodo_entry(name) { return entries[name]; };
})(globalThis);

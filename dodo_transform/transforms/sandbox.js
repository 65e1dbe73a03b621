// Evaluated once in every new QuickJS runtime, before any user code.
//
// Its value is the host's only way in: a function that hands out the entry
// points by name. compile(source) compiles a transform, load() runs its top
// level, run(...) runs it for one event, settle(...) finishes an event whose
// handler returned a promise, logs() tells what a run that threw had printed,
// calibrate(bytes) is explained below with the canary. None of them is
// a global, so a handler cannot call them (to recompile itself, say):
// sandbox.py takes them right after this file runs and holds the only
// references. Everything else lives in this closure, out of reach too.
//
// Isolation between events, without paying for a fresh runtime per event:
// - top-level variables: the transform's source is compiled once as the body
//   of a factory function, and the factory is called again for every event,
//   so each event gets fresh top-level bindings. The body is strict only if the
//   file says "use strict" (its own directive prologue): otherwise it is a
//   sloppy script, as V8 and Dodo's dashboard run it;
// - globalThis: its own properties (the built-ins) are locked, but it stays
//   extensible, so that `total = 0` without a declaration and
//   `globalThis.x = 1` work as in V8 for the rest of the event. Whatever an
//   event added is deleted before the next one runs (__dodo_restoreGlobal); an
//   addition that cannot be undone (a non-configurable property, a global made
//   non-extensible) makes the host start a new runtime instead;
// - built-ins: every intrinsic is frozen up front, the ones reachable from
//   globalThis and the ones only engine-made objects lead to (iterator,
//   generator and async function prototypes, ...). Writes to them are ignored
//   in sloppy code and throw a TypeError under "use strict", as V8 treats
//   frozen objects;
// - promise jobs: the host runs them inside the event that queued them (see
//   sandbox.py), so none is left for the next; FinalizationRegistry callbacks,
//   which the engine queues whenever a collection finds their target, run only
//   in the event that registered them;
// - engine settings: the two that live outside any object, Error's stack
//   hooks, are pinned (see __dodo_pinStackHooks).
//
// Async handlers: a handler that returns a promise or any thenable is awaited.
// run() answers {"pending":true}; the host runs the promise jobs within the
// event's limits and then calls settle(), which reports the settled value as
// run() reports a plain one, throws the rejection for the host to explain like
// any throw, or says the promise never settled.
//
"use strict";
(function (global) {
  const LOG_LIMIT = __DODO_LOG_LIMIT__;
  const InternalErrorClass = global.InternalError;
  let logs = [];
  let logBytes = 0;
  let logsTruncated = false;
  let factory = null;
  let strict = false; // whether the transform's file says "use strict"
  let canary = null;
  let pending = null; // the settlement of an async handler's promise, while jobs run
  let generation = 0; // counts events: FinalizationRegistry callbacks stay in theirs
  const ownKeysOf = Reflect.ownKeys;
  const deleteOwn = Reflect.deleteProperty;
  const prototypeOf = Reflect.getPrototypeOf;
  const setPrototypeOf = Reflect.setPrototypeOf;
  const isExtensible = Reflect.isExtensible;
  const applyFunction = Reflect.apply;
  const promiseResolve = Promise.resolve.bind(Promise);
  const promiseThen = Promise.prototype.then;
  const globalPrototype = prototypeOf(global);
  let lockedGlobals = null; // the global's own keys after the lockdown: the built-ins

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
    // Named __dodo_*, so that an error thrown here is reported at the handler's line.
    function __dodo_overridden() { return value; }
    function __dodo_override(replacement) {
      if (this === proto) {
        // The built-in itself: ignored in sloppy code, an error in strict, as for any frozen object.
        if (strict) throw new TypeError("Cannot assign to read only property '" + name + "'");
        return;
      }
      Object.defineProperty(this, name, {
        value: replacement, writable: true, enumerable: true, configurable: true,
      });
    }
    Object.defineProperty(proto, name, {
      get: __dodo_overridden,
      set: __dodo_override,
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
    // Left extensible: a sloppy script's undeclared assignments land here (see the header).
    lockedGlobals = new Set(ownKeysOf(global));
  }

  // The global as the lockdown left it: what an event added is deleted. The locked keys
  // are permanent, so the same count means nothing was added (the one scan per event).
  // False when that cannot be done: the host then starts a new runtime.
  function __dodo_restoreGlobal() {
    const keys = ownKeysOf(global);
    if (keys.length !== lockedGlobals.size) {
      for (let i = 0; i < keys.length; i++) {
        if (!lockedGlobals.has(keys[i]) && !deleteOwn(global, keys[i])) return false;
      }
    }
    if (prototypeOf(global) !== globalPrototype && !setPrototypeOf(global, globalPrototype)) {
      return false;
    }
    return isExtensible(global);
  }

  // FinalizationRegistry as a handler sees it: the engine queues a cleanup callback
  // whenever a collection finds its target dead, which may be in a later event; one
  // registered in an earlier event is dropped there instead of running with that event's
  // closures. The original stays out of reach: its prototype's constructor is this one.
  function __dodo_eventBoundFinalizers() {
    const Original = global.FinalizationRegistry;
    function FinalizationRegistry(cleanup) {
      if (new.target === undefined) {
        throw new TypeError("Constructor FinalizationRegistry requires 'new'");
      }
      if (typeof cleanup !== "function") {
        throw new TypeError("FinalizationRegistry: cleanup must be callable");
      }
      const born = generation;
      const bound = function (held) {
        if (born === generation) applyFunction(cleanup, undefined, [held]);
      };
      return Reflect.construct(Original, [bound], new.target);
    }
    FinalizationRegistry.prototype = Original.prototype;
    Object.defineProperty(Original.prototype, "constructor", {
      value: FinalizationRegistry, writable: true, enumerable: false, configurable: true,
    });
    Object.defineProperty(global, "FinalizationRegistry", {
      value: FinalizationRegistry, writable: true, enumerable: false, configurable: true,
    });
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

  function __dodo_isThenable(result) {
    return result !== null && (typeof result === "object" || typeof result === "function")
      && typeof result.then === "function";
  }

  // What the handler returned, read field by field (see __dodo_fields).
  function __dodo_outcome(result, maxRequests) {
    if (!Array.isArray(result)) return { fanOut: false, items: [__dodo_fields(result)] };
    // Over the limit, nothing is read or serialised: the count is the whole answer.
    if (result.length > maxRequests) return { tooMany: result.length };
    const items = [];
    for (let index = 0; index < result.length; index++) items.push(__dodo_fields(result[index]));
    return { fanOut: true, items };
  }

  // An async handler's promise (or thenable), settled by the jobs the host runs next.
  function __dodo_await(result) {
    const settlement = { done: false, fulfilled: false, value: undefined };
    const settle = (fulfilled) => (value) => {
      settlement.done = true;
      settlement.fulfilled = fulfilled;
      settlement.value = value;
    };
    applyFunction(promiseThen, promiseResolve(result), [settle(true), settle(false)]);
    pending = settlement;
  }

  // join() makes one flat string; `+` may make a rope, which the binding
  // cannot read back.
  function __dodo_report(head) {
    return [head, ',"logs":', JSON.stringify(logs), ',"logsTruncated":', logsTruncated,
            ',"collected":', __dodo_collected(), "}"].join("");
  }

  function __dodo_finish(outcome) {
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
  function __dodo_run(eventType, body, url, env, maxRequests, mode) {
    logs = [];
    logBytes = 0;
    logsTruncated = false;
    pending = null;
    generation++;
    if (!__dodo_restoreGlobal()) return '{"tainted":true}';
    if (__dodo_collected()) __dodo_plantCanary();
    const handler = __dodo_handler();
    if (typeof handler !== "function") return __dodo_report('{"missingHandler":true');
    const webhook = {
      method: "POST", url, eventType, mode: mode || null, payload: JSON.parse(body),
      cancel: false, headers: {}, env: env === "{}" ? {} : JSON.parse(env),
    };
    const result = handler(webhook);
    if (!__dodo_isThenable(result)) return __dodo_finish(__dodo_outcome(result, maxRequests));
    __dodo_await(result);
    return '{"pending":true}';
  }

  // After the host ran the jobs: the settled value's report, as run() gives a plain one.
  function __dodo_settle(maxRequests) {
    const settlement = pending;
    pending = null;
    if (!settlement.done) return __dodo_report('{"neverSettled":true');
    if (!settlement.fulfilled) throw settlement.value; // the handler's error, explained by the host
    return __dodo_finish(__dodo_outcome(settlement.value, maxRequests));
  }

  function __dodo_logs() {
    return JSON.stringify({ logs, logsTruncated, collected: __dodo_collected() });
  }

  // Two steps, so that the host knows a SyntaxError from the first for the file's own syntax
  // (its position may be in the closing text after the file: see sandbox.py), and one from
  // the second for an error the file's top level threw.
  // The file's own directive decides its mode: a function body that starts with
  // "use strict" is strict. Answers whether it is (a strict function's `caller`
  // throws), which decides how writes to the frozen built-ins fail.
  function __dodo_compile(source) {
    factory = new Function(source
      + "\n;return typeof handler === \"function\" ? handler : undefined;");
    try {
      void factory.caller;
      strict = false;
    } catch (_) {
      strict = true;
    }
    return strict;
  }

  // The top level runs with `this` as the global, as a script's does in V8.
  function __dodo_handler() {
    return applyFunction(factory, global, []);
  }

  function __dodo_load() {
    return typeof __dodo_handler() === "function";
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
  __dodo_eventBoundFinalizers();
  __dodo_lockDown();
  __dodo_plantCanary();
  const entries = {
    compile: __dodo_compile, load: __dodo_load, run: __dodo_run, settle: __dodo_settle,
    logs: __dodo_logs, calibrate: __dodo_calibrate,
  };
  return function __dodo_entry(name) { return entries[name]; };
})(globalThis);

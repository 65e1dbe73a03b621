// Evaluated once in every new QuickJS runtime, before any user code.
//
// It leaves three globals for the host: __dodo_load(source) compiles a
// transform, __dodo_run(...) runs it for one event, __dodo_logs() tells what
// the last run printed. Everything else lives in this closure, out of the
// handler's reach.
//
// Isolation between events, without paying for a fresh runtime per event:
// - top-level variables: the transform's source is compiled once as the body
//   of a factory function, and the factory is called again for every event,
//   so each event gets fresh top-level bindings;
// - built-ins and globalThis: every object reachable from globalThis is
//   frozen up front and globalThis itself is made read-only and
//   non-extensible, so there is nowhere an event can leave state behind.
//   The price: assigning an undeclared name (an implicit global) is a
//   ReferenceError, as in strict mode.
"use strict";
(function (global) {
  const LOG_LIMIT = __DODO_LOG_LIMIT__;
  let logs = [];
  let logBytes = 0;
  let logsTruncated = false;
  let factory = null;

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

  // Assigning an inherited, frozen data property (obj.toString = f) silently
  // fails in sloppy code: the "override mistake". Turning these few common
  // ones into accessors keeps ordinary code working after the freeze.
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

  function __dodo_reachableFrom(root) {
    const seen = new Set();
    const stack = [root];
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

  function __dodo_lockDown() {
    for (const name of ["toString", "valueOf", "constructor", "hasOwnProperty",
                        "toLocaleString", "isPrototypeOf", "propertyIsEnumerable"]) {
      __dodo_allowOverride(Object.prototype, name);
    }
    for (const name of ["name", "message", "toString", "constructor"]) {
      __dodo_allowOverride(Error.prototype, name);
    }
    __dodo_allowOverride(Function.prototype, "toString");
    for (const item of __dodo_reachableFrom(global)) {
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

  function __dodo_describe(result) {
    if (result === null) return { type: "null" };
    if (Array.isArray(result)) return { type: "array" };
    if (typeof result !== "object") return { type: typeof result };
    return {
      type: "object",
      method: result.method,
      url: result.url,
      cancel: result.cancel,
      headers: result.headers,
      payloadType: typeof result.payload,
      payload: result.payload,
    };
  }

  function __dodo_outcome(eventType, body, url, env) {
    const handler = factory();
    if (typeof handler !== "function") return { missingHandler: true };
    const webhook = {
      method: "POST", url, eventType, payload: JSON.parse(body),
      cancel: false, headers: {}, env: env === "{}" ? {} : JSON.parse(env),
    };
    const result = handler(webhook);
    if (Array.isArray(result)) return { fanOut: true, items: result.map(__dodo_describe) };
    return { fanOut: false, items: [__dodo_describe(result)] };
  }

  // A throw (the handler's, or a limit) propagates to the host, which then
  // asks __dodo_logs for what the handler printed before it.
  function __dodo_run(eventType, body, url, env) {
    logs = [];
    logBytes = 0;
    logsTruncated = false;
    const report = __dodo_outcome(eventType, body, url, env);
    report.logs = logs;
    report.logsTruncated = logsTruncated;
    try {
      return JSON.stringify(report);
    } catch (error) {
      return JSON.stringify({ unserialisable: String(error), logs, logsTruncated });
    }
  }

  function __dodo_logs() {
    return JSON.stringify({ logs, logsTruncated });
  }

  function __dodo_load(source) {
    factory = new Function(source + "\n;return typeof handler === \"function\" ? handler : undefined;");
    return typeof factory() === "function";
  }

  const console = {
    log: __dodo_capture("log"), info: __dodo_capture("info"), warn: __dodo_capture("warn"),
    error: __dodo_capture("error"), debug: __dodo_capture("debug"),
  };
  for (const name of ["console", "__dodo_load", "__dodo_run", "__dodo_logs"]) {
    const value = { console, __dodo_load, __dodo_run, __dodo_logs }[name];
    Object.defineProperty(global, name, { value, writable: false, enumerable: false, configurable: false });
  }
  __dodo_lockDown();
})(globalThis);

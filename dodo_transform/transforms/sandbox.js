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
// installed (Intl, toLocale*String, URL, TextEncoder, structuredClone, ...: see
// __dodo_installWebPlatform), so it is frozen like every other built-in. Its
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
  // Time zones: the runtime's own (the process's), UTC, fixed offsets, and the zones of
  // ZONES with today's daylight-saving rules. What they cannot do (another calendar, a
  // unit style, a time zone not listed) throws a RangeError naming it, never a quiet
  // difference.
  //
  // Installed once per runtime, before the lockdown freezes them with every other
  // intrinsic. Their state lives in private fields of the objects a handler makes, never in
  // this closure, so nothing one event does is seen by the next. Errors they throw carry a
  // stack without their own frames (__dodo_fail), so that the host reports the handler's
  // line, not one of this file.
  function __dodo_installWebPlatform(global, note) {
    const REGION = [__dodo_lineHere(), 0];
    const hidden = []; // tables only this closure holds, frozen with the intrinsics

    // An error whose stack starts at the handler's frame: the host names the first frame
    // outside the prelude's functions as the handler's line, and this code's are not
    // named __dodo_*. (A handler frame whose line falls inside REGION, in a file of over
    // some 300 lines, is dropped too: the error then names its caller's line.)
    function __dodo_fail(Type, message, ...rest) {
      const error = new Type(message, ...rest);
      const frames = String(error.stack).split("\n");
      let first = 0;
      for (; first < frames.length && frames[first].trim() !== ""; first++) {
        const match = /<input>:(\d+):\d+\)?$/.exec(frames[first]);
        if (match !== null && (+match[1] < REGION[0] || +match[1] > REGION[1])) break;
      }
      error.stack = frames.slice(first).join("\n");
      return error;
    }

    function __dodo_define(target, members) {
      for (const key of Reflect.ownKeys(members)) {
        const desc = Object.getOwnPropertyDescriptor(members, key);
        desc.enumerable = false;
        Object.defineProperty(target, key, desc);
      }
    }

    function __dodo_option(options, name, allowed, fallback, where) {
      let value = options[name];
      if (value === undefined) return fallback;
      if (allowed === Boolean) return Boolean(value);
      value = String(value);
      if (allowed !== null && !allowed.includes(value)) {
        throw __dodo_fail(RangeError,
          "Value " + value + " out of range for Intl." + where + " options property " + name);
      }
      return value;
    }

    function __dodo_numberOption(options, name, min, max, fallback) {
      const value = options[name];
      if (value === undefined) return fallback;
      const number = Number(value);
      if (!Number.isFinite(number) || number < min || number > max) {
        throw __dodo_fail(RangeError, name + " value is out of range.");
      }
      return Math.floor(number);
    }

    function __dodo_optionsObject(options) {
      if (options === undefined) return Object.create(null);
      if (options === null) throw __dodo_fail(TypeError, "Cannot convert undefined or null to object");
      return Object(options);
    }

    // Every locale is formatted as en-US; the resolved locale is "en" or "en-US" when asked
    // for, as V8 resolves them, and "en-US" otherwise.
    const LOCALE_TAG = /^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$/;
    function __dodo_locale(locales) {
      const list = locales === undefined ? [] : typeof locales === "string" ? [locales]
        : Array.from(Object(locales));
      for (const tag of list) {
        if (typeof tag !== "string" && (typeof tag !== "object" || tag === null)) {
          throw __dodo_fail(TypeError, "Language ID should be string or object.");
        }
        if (!LOCALE_TAG.test(String(tag))) {
          throw __dodo_fail(RangeError, "Incorrect locale information provided");
        }
      }
      if (list.length === 0) return "en-US";
      const first = String(list[0]);
      const lower = first.toLowerCase();
      if (lower === "en") return "en";
      if (lower === "en-us") return "en-US";
      if (!lower.startsWith("en-us-")) note("Intl: locale " + first + " is formatted as en-US");
      return "en-US";
    }

    function __dodo_supportedLocalesOf(locales) {
      const list = locales === undefined ? [] : typeof locales === "string" ? [locales]
        : Array.from(Object(locales));
      __dodo_locale(list);
      return list.map(String).filter((tag) => /^en(-us)?$/i.test(tag))
        .map((tag) => (tag.length === 2 ? "en" : "en-US"));
    }

    // ---- numbers ----------------------------------------------------------------------
    // A finite number as decimal digits: value = 0.DIGITS x 10^point, digits without
    // leading or trailing zeros ("" for zero). ICU formats the shortest decimal that reads
    // back as the double, which is what String(number) gives: so 1.005 rounds to 1.01.
    function __dodo_decimal(text) {
      const match = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text);
      if (match === null || (match[2] === "" && (match[3] || "") === "")) return null;
      let digits = match[2] + (match[3] || "");
      let point = match[2].length + (match[4] ? Number(match[4]) : 0);
      const lead = digits.length - digits.replace(/^0+/, "").length;
      digits = digits.slice(lead).replace(/0+$/, "");
      point -= lead;
      if (digits === "") point = 0;
      return { negative: match[1] === "-", digits, point };
    }

    function __dodo_toDecimal(value) {
      if (typeof value === "bigint") {
        return { finite: true, ...__dodo_decimal(String(value)) };
      }
      if (typeof value === "string") {
        const trimmed = value.trim();
        const exact = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(trimmed)
          ? __dodo_decimal(trimmed) : null;
        if (exact !== null) return { finite: true, ...exact };
        value = Number(value);
      }
      const number = Number(value);
      if (Number.isNaN(number)) return { finite: false, nan: true, negative: false };
      const negative = number < 0 || Object.is(number, -0);
      if (!Number.isFinite(number)) return { finite: false, nan: false, negative };
      return { finite: true, ...__dodo_decimal(String(Math.abs(number))), negative };
    }

    // Whether rounding moves away from zero, by ECMA-402's rounding modes: `first` is the
    // first digit dropped, `rest` whether any later one is not 0, `odd` whether the last
    // digit kept is odd.
    function __dodo_roundsAway(mode, negative, first, rest, odd) {
      if (first === 0 && !rest) return false;
      const half = first > 5 || (first === 5 && rest) ? 1 : first === 5 ? 0 : -1;
      switch (mode) {
        case "ceil": return !negative;
        case "floor": return negative;
        case "expand": return true;
        case "trunc": return false;
        case "halfCeil": return half > 0 || (half === 0 && !negative);
        case "halfFloor": return half > 0 || (half === 0 && negative);
        case "halfTrunc": return half > 0;
        case "halfEven": return half > 0 || (half === 0 && odd);
        default: return half >= 0; // halfExpand
      }
    }

    // Round to keep the digits down to position `last` (a power of ten: -2 keeps hundredths).
    function __dodo_roundAt(decimal, last, mode) {
      const keep = decimal.point - last;
      if (keep >= decimal.digits.length) return decimal;
      let digits = keep > 0 ? decimal.digits.slice(0, keep) : "";
      const first = keep >= 0 ? Number(decimal.digits[keep]) : 0;
      const rest = /[1-9]/.test(keep >= 0 ? decimal.digits.slice(keep + 1) : decimal.digits);
      const odd = digits !== "" && Number(digits[digits.length - 1]) % 2 === 1;
      let point = keep > 0 ? decimal.point : last + 1;
      if (__dodo_roundsAway(mode, decimal.negative, first, rest, odd)) {
        let index = digits.length - 1;
        while (index >= 0 && digits[index] === "9") index--;
        if (index < 0) {
          digits = "1";
          point += keep > 0 ? 1 : 0;
        } else {
          digits = digits.slice(0, index) + String(Number(digits[index]) + 1);
        }
      }
      digits = digits.replace(/0+$/, "");
      return { ...decimal, digits, point: digits === "" ? 0 : point };
    }

    function __dodo_shift(decimal, places) {
      return decimal.digits === "" ? decimal : { ...decimal, point: decimal.point + places };
    }

    // Rounded per the digit options: [decimal, fraction digits to show at least].
    function __dodo_rounded(decimal, o) {
      if (o.roundingPriority === "morePrecision") { // compact notation's rounding
        const bySignificant = decimal.point - o.maximumSignificantDigits;
        const byFraction = -o.maximumFractionDigits;
        return [__dodo_roundAt(decimal, Math.min(bySignificant, byFraction), o.roundingMode), 0];
      }
      if (o.maximumSignificantDigits !== undefined) {
        const rounded = __dodo_roundAt(decimal, decimal.point - o.maximumSignificantDigits, o.roundingMode);
        const shown = o.minimumSignificantDigits - (rounded.digits === "" ? 1 : rounded.point);
        return [rounded, Math.max(0, shown)];
      }
      const rounded = __dodo_roundAt(decimal, -o.maximumFractionDigits, o.roundingMode);
      const whole = o.trailingZeroDisplay === "stripIfInteger" && rounded.point >= rounded.digits.length;
      return [rounded, whole ? 0 : o.minimumFractionDigits];
    }

    function __dodo_grouped(integer, grouping) {
      if (grouping === false || (grouping === "min2" && integer.length < 5)) return [integer];
      const groups = [];
      let end = integer.length;
      for (; end > 3; end -= 3) groups.unshift(integer.slice(end - 3, end));
      groups.unshift(integer.slice(0, end));
      return groups;
    }

    // The parts of a rounded decimal's digits: integer groups, decimal point, fraction.
    function __dodo_digitParts(decimal, minFraction, o) {
      const { digits, point } = decimal;
      let integer = point > 0 ? (digits.slice(0, point) + "0".repeat(Math.max(0, point - digits.length))) : "";
      let fraction = point >= 0 ? digits.slice(point) : "0".repeat(-point) + digits;
      integer = integer.padStart(o.minimumIntegerDigits, "0") || "0";
      fraction = fraction.padEnd(minFraction, "0");
      const parts = [];
      __dodo_grouped(integer, o.useGrouping).forEach((group, index) => {
        if (index > 0) parts.push({ type: "group", value: "," });
        parts.push({ type: "integer", value: group });
      });
      if (fraction !== "") {
        parts.push({ type: "decimal", value: "." }, { type: "fraction", value: fraction });
      }
      return parts;
    }

    const COMPACT = ["", "K", "M", "B", "T"];
    const COMPACT_LONG = ["", " thousand", " million", " billion", " trillion"];

    // The number's own parts, without sign, currency or percent sign.
    function __dodo_numberParts(decimal, o) {
      if (o.notation === "compact") {
        let scale = 0;
        for (let attempt = 0; attempt < 2; attempt++) {
          scale = Math.min(4, Math.max(0, Math.floor((decimal.point - 1) / 3)));
          if (decimal.digits === "") scale = 0;
          const [rounded] = __dodo_rounded(__dodo_shift(decimal, -3 * scale), o);
          if (rounded.point <= 3 || scale === 4 || attempt === 1) {
            const parts = __dodo_digitParts(rounded, 0, o);
            if (scale === 0) return parts;
            const long = o.compactDisplay === "long";
            parts.push({ type: long ? "literal" : "compact", value: long ? " " : COMPACT[scale] });
            if (long) parts.push({ type: "compact", value: COMPACT_LONG[scale].slice(1) });
            return parts;
          }
          decimal = __dodo_roundAt(decimal, decimal.point - 4, o.roundingMode); // 999,999 -> 1M
        }
      }
      if (o.notation === "scientific" || o.notation === "engineering") {
        let exponent = decimal.digits === "" ? 0 : decimal.point - 1;
        if (o.notation === "engineering") exponent = Math.floor(exponent / 3) * 3;
        let [rounded, minFraction] = __dodo_rounded(__dodo_shift(decimal, -exponent), o);
        const limit = o.notation === "engineering" ? 3 : 1;
        if (rounded.point > limit) { // 9.9995 became 10.000
          exponent += limit === 1 ? 1 : 3;
          [rounded, minFraction] = __dodo_rounded(__dodo_shift(decimal, -exponent), o);
        }
        const parts = __dodo_digitParts(rounded, minFraction, { ...o, useGrouping: false });
        parts.push({ type: "exponentSeparator", value: "E" });
        if (exponent < 0) parts.push({ type: "exponentMinusSign", value: "-" });
        parts.push({ type: "exponentInteger", value: String(Math.abs(exponent)) });
        return parts;
      }
      const [rounded, minFraction] = __dodo_rounded(decimal, o);
      return __dodo_digitParts(rounded, minFraction, o);
    }

    function __dodo_isZero(parts) {
      return parts.every((part) => part.type !== "integer" && part.type !== "fraction"
        || /^0*$/.test(part.value));
    }

    // en-US puts a no-break space between the digits and a currency symbol ending in a
    // letter or punctuation ("CHF 1.00", "Cg. 1.00"), but none after "$" or "CA$".
    const SYMBOL_END = /\p{S}$/u;

    function __dodo_formatNumber(o, value) {
      const decimal = __dodo_toDecimal(value);
      let parts;
      if (!decimal.finite) {
        parts = [decimal.nan ? { type: "nan", value: "NaN" } : { type: "infinity", value: "∞" }];
      } else {
        parts = __dodo_numberParts(o.style === "percent" ? __dodo_shift(decimal, 2) : decimal, o);
      }
      const zero = decimal.finite && __dodo_isZero(parts);
      const negative = decimal.negative && !(zero && o.signDisplay === "exceptZero");
      let sign = "";
      if (o.signDisplay === "never") sign = "";
      else if (negative && o.signDisplay !== "negative") sign = "-";
      else if (negative && !zero) sign = "-";
      else if (!negative && (o.signDisplay === "always"
        || (o.signDisplay === "exceptZero" && !zero && !decimal.nan))) sign = "+";
      if (o.style === "percent") parts.push({ type: "percentSign", value: "%" });
      const accounting = o.style === "currency" && o.currencySign === "accounting" && sign === "-";
      if (o.style === "currency") {
        const symbol = __dodo_currencySymbol(o);
        const spaced = decimal.finite && !SYMBOL_END.test(symbol);
        parts.unshift({ type: "currency", value: symbol },
          ...(spaced ? [{ type: "literal", value: "\u00a0" }] : []));
      }
      if (accounting) {
        parts.unshift({ type: "literal", value: "(" });
        parts.push({ type: "literal", value: ")" });
      } else if (sign !== "") {
        parts.unshift({ type: sign === "-" ? "minusSign" : "plusSign", value: sign });
      }
      return parts;
    }

    const CURRENCY_SYMBOLS = {
      AUD: "A$", BRL: "R$", CAD: "CA$", CNY: "CN¥", EUR: "€", GBP: "£", HKD: "HK$", ILS: "₪",
      INR: "₹", JPY: "¥", KRW: "₩", MXN: "MX$", NZD: "NZ$", PHP: "₱", TWD: "NT$", USD: "$",
      VND: "₫", XAF: "FCFA", XCD: "EC$", XCG: "Cg.", XOF: "F\u202fCFA", XPF: "CFPF",
    };
    const NARROW_SYMBOLS = {
      AFN: "؋", AMD: "֏", AOA: "Kz", ARS: "$", AUD: "$", AZN: "₼", BAM: "KM", BBD: "$",
      BDT: "৳", BMD: "$", BND: "$", BOB: "Bs", BSD: "$", BWP: "P", BZD: "$", CAD: "$",
      CLP: "$", CNY: "¥", COP: "$", CRC: "₡", CUC: "$", CUP: "$", CZK: "Kč", DKK: "kr",
      DOP: "$", EGP: "E£", FJD: "$", FKP: "£", GEL: "₾", GHS: "GH₵", GIP: "£", GNF: "FG",
      GTQ: "Q", GYD: "$", HKD: "$", HNL: "L", HRK: "kn", HUF: "Ft", IDR: "Rp", ISK: "kr",
      JMD: "$", KGS: "⃀", KHR: "៛", KMF: "CF", KPW: "₩", KYD: "$", KZT: "₸", LAK: "₭",
      LBP: "L£", LKR: "Rs", LRD: "$", MGA: "Ar", MMK: "K", MNT: "₮", MUR: "Rs", MXN: "$",
      MYR: "RM", NAD: "$", NGN: "₦", NIO: "C$", NOK: "kr", NPR: "Rs", NZD: "$", PKR: "Rs",
      PLN: "zł", PYG: "₲", RON: "lei", RUB: "₽", RWF: "RF", SBD: "$", SEK: "kr", SGD: "$",
      SHP: "£", SRD: "$", SSP: "£", STN: "Db", SYP: "£", THB: "฿", TOP: "T$", TRY: "₺",
      TTD: "$", TWD: "$", UAH: "₴", UYU: "$", XCD: "$", ZAR: "R", ZMW: "ZK",
    };
    const CURRENCY_DIGITS = {
      AFN: 0, ALL: 0, BHD: 3, BIF: 0, CLP: 0, COP: 0, DJF: 0, GNF: 0, HUF: 0, IDR: 0, IQD: 0,
      IRR: 0, ISK: 0, JOD: 3, JPY: 0, KMF: 0, KPW: 0, KRW: 0, KWD: 3, LAK: 0, LBP: 0, LYD: 3,
      MGA: 0, MMK: 0, OMR: 3, PKR: 0, PYG: 0, RWF: 0, SLL: 0, SOS: 0, SYP: 0, TND: 3, UGX: 0,
      VND: 0, VUV: 0, XAF: 0, XOF: 0, XPF: 0, YER: 0,
    };
    hidden.push(CURRENCY_SYMBOLS, NARROW_SYMBOLS, CURRENCY_DIGITS, COMPACT, COMPACT_LONG, REGION);

    function __dodo_currencySymbol(o) {
      if (o.currencyDisplay === "code") return o.currency;
      const symbol = CURRENCY_SYMBOLS[o.currency] || o.currency;
      return o.currencyDisplay === "narrowSymbol" ? NARROW_SYMBOLS[o.currency] || symbol : symbol;
    }

    const NUMBER = "NumberFormat";
    function __dodo_numberOptions(locales, options) {
      const given = __dodo_optionsObject(options);
      const o = { locale: __dodo_locale(locales), numberingSystem: "latn" };
      o.style = __dodo_option(given, "style", ["decimal", "percent", "currency", "unit"], "decimal", NUMBER);
      const currency = given.currency;
      if (currency !== undefined && !/^[A-Za-z]{3}$/.test(String(currency))) {
        throw __dodo_fail(RangeError, "Invalid currency code : " + currency);
      }
      const display = __dodo_option(given, "currencyDisplay", ["code", "symbol", "narrowSymbol", "name"], "symbol", NUMBER);
      const currencySign = __dodo_option(given, "currencySign", ["standard", "accounting"], "standard", NUMBER);
      if (o.style === "unit" || display === "name") {
        throw __dodo_fail(RangeError, "dodo-transform: Intl.NumberFormat "
          + (o.style === "unit" ? "style unit" : "currencyDisplay name") + " is not supported here");
      }
      if (o.style === "currency") {
        if (currency === undefined) throw __dodo_fail(TypeError, "Currency code is required with currency style.");
        o.currency = String(currency).toUpperCase();
        o.currencyDisplay = display;
        o.currencySign = currencySign;
      }
      const notation = __dodo_option(given, "notation", ["standard", "scientific", "engineering", "compact"], "standard", NUMBER);
      const digits = o.style === "currency" ? (CURRENCY_DIGITS[o.currency] ?? 2) : 0;
      const defaultMax = o.style === "currency" ? digits : o.style === "percent" ? 0 : 3;
      o.minimumIntegerDigits = __dodo_numberOption(given, "minimumIntegerDigits", 1, 21, 1);
      const minSig = given.minimumSignificantDigits, maxSig = given.maximumSignificantDigits;
      const minFD = given.minimumFractionDigits, maxFD = given.maximumFractionDigits;
      if (minSig !== undefined || maxSig !== undefined) {
        o.minimumSignificantDigits = __dodo_numberOption(given, "minimumSignificantDigits", 1, 21, 1);
        o.maximumSignificantDigits = __dodo_numberOption(given, "maximumSignificantDigits", o.minimumSignificantDigits, 21, 21);
      } else if (minFD !== undefined || maxFD !== undefined || notation !== "compact") {
        const min = __dodo_numberOption(given, "minimumFractionDigits", 0, 100, undefined);
        const max = __dodo_numberOption(given, "maximumFractionDigits", 0, 100, undefined);
        if (min !== undefined && max !== undefined && max < min) {
          throw __dodo_fail(RangeError, "maximumFractionDigits value is out of range.");
        }
        o.minimumFractionDigits = min ?? Math.min(o.style === "currency" ? digits : 0, max ?? Infinity);
        o.maximumFractionDigits = max ?? Math.max(defaultMax, o.minimumFractionDigits);
      } else {
        o.minimumSignificantDigits = 1;
        o.maximumSignificantDigits = 2;
        o.minimumFractionDigits = 0;
        o.maximumFractionDigits = 0;
      }
      const grouping = given.useGrouping;
      o.useGrouping = grouping === undefined ? (notation === "compact" ? "min2" : "auto")
        : grouping === true || grouping === "true" ? "always"
          : grouping === false || grouping === "false" ? false
            : __dodo_option(given, "useGrouping", ["min2", "auto", "always"], "auto", NUMBER);
      o.notation = notation;
      if (notation === "compact") {
        o.compactDisplay = __dodo_option(given, "compactDisplay", ["short", "long"], "short", NUMBER);
      }
      o.signDisplay = __dodo_option(given, "signDisplay", ["auto", "never", "always", "exceptZero", "negative"], "auto", NUMBER);
      o.roundingMode = __dodo_option(given, "roundingMode", ["ceil", "floor", "expand", "trunc",
        "halfCeil", "halfFloor", "halfExpand", "halfTrunc", "halfEven"], "halfExpand", NUMBER);
      for (const [name, only] of [["roundingIncrement", 1], ["roundingPriority", "auto"]]) {
        if (given[name] !== undefined && String(given[name]) !== String(only)) {
          throw __dodo_fail(RangeError, "dodo-transform: Intl.NumberFormat " + name + " "
            + given[name] + " is not supported here");
        }
      }
      o.roundingIncrement = 1;
      o.trailingZeroDisplay = __dodo_option(given, "trailingZeroDisplay", ["auto", "stripIfInteger"], "auto", NUMBER);
      o.roundingPriority = notation === "compact" && o.maximumFractionDigits === 0
        && o.maximumSignificantDigits === 2 ? "morePrecision" : "auto";
      return o;
    }

    class NumberFormat {
      #options;
      #bound;
      constructor(locales, options) {
        this.#options = __dodo_numberOptions(locales, options);
      }
      get format() {
        if (this.#bound === undefined) {
          const options = this.#options;
          this.#bound = (value) => __dodo_formatNumber(options, value).map((p) => p.value).join("");
        }
        return this.#bound;
      }
      formatToParts(value) {
        return __dodo_formatNumber(this.#options, value);
      }
      resolvedOptions() {
        const o = { ...this.#options };
        if (o.useGrouping === false) o.useGrouping = false;
        return o;
      }
      static supportedLocalesOf(locales) {
        return __dodo_supportedLocalesOf(locales);
      }
    }
    Object.defineProperty(NumberFormat.prototype, Symbol.toStringTag,
      { value: "Intl.NumberFormat", configurable: true });

    // ---- dates ------------------------------------------------------------------------
    const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
      "September", "October", "November", "December"];
    const WEEKDAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
    // name: [canonical name, standard offset (min), daylight rule, short standard and
    // daylight names (absent: GMT+h), long standard and daylight names]
    const US = "us", EU = "eu", AU = "au", NZ = "nz";
    const CET = ["Central European Standard Time", "Central European Summer Time"];
    const EET = ["Eastern European Standard Time", "Eastern European Summer Time"];
    const ZONES = {
      "America/New_York": [0, -300, US, "EST", "EDT", "Eastern Standard Time", "Eastern Daylight Time"],
      "America/Toronto": [0, -300, US, "EST", "EDT", "Eastern Standard Time", "Eastern Daylight Time"],
      "America/Chicago": [0, -360, US, "CST", "CDT", "Central Standard Time", "Central Daylight Time"],
      "America/Denver": [0, -420, US, "MST", "MDT", "Mountain Standard Time", "Mountain Daylight Time"],
      "America/Phoenix": [0, -420, null, "MST", "MST", "Mountain Standard Time", "Mountain Standard Time"],
      "America/Los_Angeles": [0, -480, US, "PST", "PDT", "Pacific Standard Time", "Pacific Daylight Time"],
      "America/Vancouver": [0, -480, US, "PST", "PDT", "Pacific Standard Time", "Pacific Daylight Time"],
      "America/Anchorage": [0, -540, US, "AKST", "AKDT", "Alaska Standard Time", "Alaska Daylight Time"],
      "Pacific/Honolulu": [0, -600, null, "HST", "HST", "Hawaii-Aleutian Standard Time", "Hawaii-Aleutian Standard Time"],
      "America/Halifax": [0, -240, US, "AST", "ADT", "Atlantic Standard Time", "Atlantic Daylight Time"],
      "America/St_Johns": [0, -210, US, null, null, "Newfoundland Standard Time", "Newfoundland Daylight Time"],
      "America/Mexico_City": [0, -360, null, "CST", "CST", "Central Standard Time", "Central Standard Time"],
      "America/Sao_Paulo": [0, -180, null, null, null, "Brasilia Standard Time", "Brasilia Standard Time"],
      "America/Argentina/Buenos_Aires": ["America/Buenos_Aires", -180, null, null, null, "Argentina Standard Time", "Argentina Standard Time"],
      "America/Bogota": [0, -300, null, null, null, "Colombia Standard Time", "Colombia Standard Time"],
      "America/Lima": [0, -300, null, null, null, "Peru Standard Time", "Peru Standard Time"],
      "Europe/London": [0, 0, EU, "GMT", null, "Greenwich Mean Time", "British Summer Time"],
      "Europe/Dublin": [0, 0, EU, "GMT", null, "Greenwich Mean Time", "Irish Standard Time"],
      "Europe/Lisbon": [0, 0, EU, "GMT+0", null, "Western European Standard Time", "Western European Summer Time"],
      "Europe/Paris": [0, 60, EU, null, null, ...CET], "Europe/Berlin": [0, 60, EU, null, null, ...CET],
      "Europe/Madrid": [0, 60, EU, null, null, ...CET], "Europe/Rome": [0, 60, EU, null, null, ...CET],
      "Europe/Amsterdam": [0, 60, EU, null, null, ...CET], "Europe/Brussels": [0, 60, EU, null, null, ...CET],
      "Europe/Vienna": [0, 60, EU, null, null, ...CET], "Europe/Stockholm": [0, 60, EU, null, null, ...CET],
      "Europe/Oslo": [0, 60, EU, null, null, ...CET], "Europe/Copenhagen": [0, 60, EU, null, null, ...CET],
      "Europe/Warsaw": [0, 60, EU, null, null, ...CET], "Europe/Prague": [0, 60, EU, null, null, ...CET],
      "Europe/Zurich": [0, 60, EU, null, null, ...CET],
      "Europe/Athens": [0, 120, EU, null, null, ...EET], "Europe/Helsinki": [0, 120, EU, null, null, ...EET],
      "Europe/Kyiv": ["Europe/Kiev", 120, EU, null, null, ...EET], "Europe/Kiev": [0, 120, EU, null, null, ...EET],
      "Europe/Bucharest": [0, 120, EU, null, null, ...EET],
      "Europe/Istanbul": [0, 180, null, null, null, "Türkiye Standard Time", "Türkiye Standard Time"],
      "Europe/Moscow": [0, 180, null, null, null, "Moscow Standard Time", "Moscow Standard Time"],
      "Africa/Lagos": [0, 60, null, null, null, "West Africa Time", "West Africa Time"],
      "Africa/Nairobi": [0, 180, null, null, null, "East Africa Time", "East Africa Time"],
      "Africa/Johannesburg": [0, 120, null, null, null, "South Africa Standard Time", "South Africa Standard Time"],
      "Asia/Dubai": [0, 240, null, null, null, "Gulf Standard Time", "Gulf Standard Time"],
      "Asia/Riyadh": [0, 180, null, null, null, "Arabian Standard Time", "Arabian Standard Time"],
      "Asia/Karachi": [0, 300, null, null, null, "Pakistan Standard Time", "Pakistan Standard Time"],
      "Asia/Kolkata": ["Asia/Calcutta", 330, null, null, null, "India Standard Time", "India Standard Time"],
      "Asia/Calcutta": [0, 330, null, null, null, "India Standard Time", "India Standard Time"],
      "Asia/Kathmandu": ["Asia/Katmandu", 345, null, null, null, "Nepal Time", "Nepal Time"],
      "Asia/Dhaka": [0, 360, null, null, null, "Bangladesh Standard Time", "Bangladesh Standard Time"],
      "Asia/Bangkok": [0, 420, null, null, null, "Indochina Time", "Indochina Time"],
      "Asia/Jakarta": [0, 420, null, null, null, "Western Indonesia Time", "Western Indonesia Time"],
      "Asia/Singapore": [0, 480, null, null, null, "Singapore Standard Time", "Singapore Standard Time"],
      "Asia/Shanghai": [0, 480, null, null, null, "China Standard Time", "China Standard Time"],
      "Asia/Hong_Kong": [0, 480, null, null, null, "Hong Kong Standard Time", "Hong Kong Standard Time"],
      "Asia/Manila": [0, 480, null, null, null, "Philippine Standard Time", "Philippine Standard Time"],
      "Asia/Tokyo": [0, 540, null, null, null, "Japan Standard Time", "Japan Standard Time"],
      "Asia/Seoul": [0, 540, null, null, null, "Korean Standard Time", "Korean Standard Time"],
      "Australia/Sydney": [0, 600, AU, null, null, "Australian Eastern Standard Time", "Australian Eastern Daylight Time"],
      "Australia/Melbourne": [0, 600, AU, null, null, "Australian Eastern Standard Time", "Australian Eastern Daylight Time"],
      "Australia/Brisbane": [0, 600, null, null, null, "Australian Eastern Standard Time", "Australian Eastern Standard Time"],
      "Australia/Adelaide": [0, 570, AU, null, null, "Australian Central Standard Time", "Australian Central Daylight Time"],
      "Australia/Perth": [0, 480, null, null, null, "Australian Western Standard Time", "Australian Western Standard Time"],
      "Pacific/Auckland": [0, 720, NZ, null, null, "New Zealand Standard Time", "New Zealand Daylight Time"],
    };
    const UTC_NAMES = ["UTC", "ETC/UTC", "GMT", "ETC/GMT", "ETC/UCT", "UCT", "ETC/UNIVERSAL", "UNIVERSAL", "ETC/ZULU", "ZULU", "ETC/GMT0", "GMT0", "ETC/GMT+0", "ETC/GMT-0"];
    const UPPER_ZONES = {};
    for (const name of Object.keys(ZONES)) UPPER_ZONES[name.toUpperCase()] = name;
    hidden.push(MONTHS, WEEKDAYS, CET, EET, ZONES, UTC_NAMES, UPPER_ZONES, ...Object.values(ZONES));

    // The n-th (or, for n = -1, last) Sunday of a month, as a UTC day start in ms.
    function __dodo_sunday(year, month, n) {
      if (n < 0) {
        const last = Date.UTC(year, month + 1, 0);
        return last - new Date(last).getUTCDay() * 86400000;
      }
      const first = Date.UTC(year, month, 1);
      return first + ((7 - new Date(first).getUTCDay()) % 7) * 86400000 + (n - 1) * 604800000;
    }

    // Whether daylight-saving time is in force at `time` (ms, UTC) under `rule`, for a zone
    // whose standard offset is `offset` minutes.
    function __dodo_isDaylight(rule, offset, time) {
      const year = new Date(time + offset * 60000).getUTCFullYear();
      const hour = 3600000;
      const local = (day, hours) => day + hours * hour - offset * 60000; // standard local time
      if (rule === US) {
        return time >= local(__dodo_sunday(year, 2, 2), 2) && time < local(__dodo_sunday(year, 10, 1), 1);
      }
      if (rule === EU) {
        return time >= __dodo_sunday(year, 2, -1) + hour && time < __dodo_sunday(year, 9, -1) + hour;
      }
      if (rule === AU) {
        return !(time >= local(__dodo_sunday(year, 3, 1), 2) && time < local(__dodo_sunday(year, 9, 1), 2));
      }
      if (rule === NZ) {
        return !(time >= local(__dodo_sunday(year, 3, 1), 2) && time < local(__dodo_sunday(year, 8, -1), 2));
      }
      return false;
    }

    // A time zone: { name, offset(time) -> minutes, names(time) -> [short, long] }, or null
    // for the runtime's own.
    function __dodo_timeZone(value) {
      if (value === undefined) return null;
      const text = String(value);
      const upper = text.toUpperCase();
      if (UTC_NAMES.includes(upper)) {
        return { name: "UTC", offset: () => 0, names: () => ["UTC", "Coordinated Universal Time"] };
      }
      const fixed = /^([+-])(\d{2}):?(\d{2})$/.exec(text);
      if (fixed !== null && +fixed[2] < 24 && +fixed[3] < 60) {
        const minutes = (fixed[1] === "-" ? -1 : 1) * (+fixed[2] * 60 + +fixed[3]);
        const name = fixed[1] + fixed[2] + ":" + fixed[3];
        return { name, offset: () => minutes, names: () => [__dodo_gmt(minutes, false), __dodo_gmt(minutes, true)] };
      }
      const etc = /^ETC\/GMT([+-])(\d{1,2})$/.exec(upper);
      if (etc !== null && +etc[2] <= (etc[1] === "+" ? 12 : 14)) {
        const minutes = (etc[1] === "+" ? -60 : 60) * +etc[2]; // POSIX signs: Etc/GMT+5 is UTC-5
        const name = "Etc/GMT" + etc[1] + +etc[2];
        return { name, offset: () => minutes, names: () => [__dodo_gmt(minutes, false), __dodo_gmt(minutes, true)] };
      }
      const key = UPPER_ZONES[upper];
      if (key === undefined) {
        throw __dodo_fail(RangeError, "Invalid time zone specified: " + text);
      }
      const [canonical, standard, rule, shortStd, shortDst, longStd, longDst] = ZONES[key];
      const daylight = (time) => rule !== null && __dodo_isDaylight(rule, standard, time);
      return {
        name: canonical || key,
        offset: (time) => standard + (daylight(time) ? 60 : 0),
        names(time) {
          const dst = daylight(time);
          const short = (dst ? shortDst : shortStd) || __dodo_gmt(standard + (dst ? 60 : 0), false);
          return [short, dst ? longDst : longStd];
        },
      };
    }

    function __dodo_localZone() {
      const offset = (time) => -new Date(time).getTimezoneOffset();
      const year = new Date().getFullYear();
      const utc = offset(Date.UTC(year, 0, 1)) === 0 && offset(Date.UTC(year, 6, 1)) === 0;
      return {
        name: utc ? "UTC" : __dodo_offsetName(offset(Date.now())),
        offset,
        names: (time) => (utc ? ["UTC", "Coordinated Universal Time"]
          : [__dodo_gmt(offset(time), false), __dodo_gmt(offset(time), true)]),
      };
    }

    function __dodo_offsetName(minutes) {
      const abs = Math.abs(minutes);
      return (minutes < 0 ? "-" : "+") + String(Math.floor(abs / 60)).padStart(2, "0") + ":"
        + String(abs % 60).padStart(2, "0");
    }

    // "GMT+5:30" (short) or "GMT+05:30" (long).
    function __dodo_gmt(minutes, long) {
      const abs = Math.abs(minutes);
      const hours = Math.floor(abs / 60), rest = abs % 60;
      const sign = minutes < 0 ? "-" : "+";
      if (long) return "GMT" + sign + String(hours).padStart(2, "0") + ":" + String(rest).padStart(2, "0");
      return "GMT" + sign + hours + (rest ? ":" + String(rest).padStart(2, "0") : "");
    }

    const DATE = "DateTimeFormat";
    const NUMERIC = ["numeric", "2-digit"];
    const TEXT = ["narrow", "short", "long"];
    const COMPONENTS = [
      ["weekday", TEXT], ["era", TEXT], ["year", NUMERIC], ["month", [...NUMERIC, ...TEXT]],
      ["day", NUMERIC], ["dayPeriod", TEXT], ["hour", NUMERIC], ["minute", NUMERIC],
      ["second", NUMERIC], ["fractionalSecondDigits", null],
      ["timeZoneName", ["short", "long", "shortOffset", "longOffset", "shortGeneric", "longGeneric"]],
    ];
    const STYLES = ["full", "long", "medium", "short"];
    hidden.push(NUMERIC, TEXT, COMPONENTS, STYLES, ...COMPONENTS);

    // ECMA-402 CreateDateTimeFormat with ToDateTimeOptions: `required` and `defaults` are
    // "date", "time" or "any"/"all", as toLocaleDateString, toLocaleTimeString and
    // toLocaleString ask.
    function __dodo_dateOptions(locales, options, required, defaults) {
      const given = __dodo_optionsObject(options);
      const o = { locale: __dodo_locale(locales), calendar: "gregory", numberingSystem: "latn" };
      const calendar = given.calendar;
      if (calendar !== undefined && !/^(gregory|gregorian|iso8601)$/.test(String(calendar))) {
        throw __dodo_fail(RangeError, "dodo-transform: calendar " + calendar + " is not supported here");
      }
      const hour12 = given.hour12 === undefined ? undefined : Boolean(given.hour12);
      const hourCycle = __dodo_option(given, "hourCycle", ["h11", "h12", "h23", "h24"], undefined, DATE);
      const zone = __dodo_timeZone(given.timeZone);
      const fields = {};
      for (const [name, allowed] of COMPONENTS) {
        if (name === "fractionalSecondDigits") {
          const digits = __dodo_numberOption(given, name, 1, 3, undefined);
          if (digits !== undefined) fields[name] = digits;
          continue;
        }
        const value = __dodo_option(given, name, allowed, undefined, DATE);
        if (value !== undefined) fields[name] = value;
      }
      if (fields.timeZoneName === "shortGeneric" || fields.timeZoneName === "longGeneric") {
        throw __dodo_fail(RangeError, "dodo-transform: timeZoneName " + fields.timeZoneName + " is not supported here");
      }
      const dateStyle = __dodo_option(given, "dateStyle", STYLES, undefined, DATE);
      const timeStyle = __dodo_option(given, "timeStyle", STYLES, undefined, DATE);
      if (dateStyle !== undefined || timeStyle !== undefined) {
        const explicit = Object.keys(fields).find((name) => name !== "timeZoneName" || true);
        if (explicit !== undefined) {
          throw __dodo_fail(TypeError, "Can't set option " + explicit + " when "
            + (dateStyle !== undefined ? "dateStyle" : "timeStyle") + " is used");
        }
        if (required === "date" && dateStyle === undefined) {
          throw __dodo_fail(TypeError, "Invalid option : timeStyle");
        }
        if (required === "time" && timeStyle === undefined) {
          throw __dodo_fail(TypeError, "Invalid option : dateStyle");
        }
      } else {
        const dateFields = ["weekday", "year", "month", "day"];
        const timeFields = ["dayPeriod", "hour", "minute", "second", "fractionalSecondDigits"];
        let needDefaults = true;
        if (required !== "time" && dateFields.some((name) => name in fields)) needDefaults = false;
        if (required !== "date" && timeFields.some((name) => name in fields)) needDefaults = false;
        if (needDefaults && (defaults === "date" || defaults === "all")) {
          fields.year = fields.month = fields.day = "numeric";
        }
        if (needDefaults && (defaults === "time" || defaults === "all")) {
          fields.hour = fields.minute = fields.second = "numeric";
        }
      }
      o.zone = zone;
      o.timeZone = (zone || __dodo_localZone()).name;
      const hasHour = fields.hour !== undefined || timeStyle !== undefined;
      if (hasHour) {
        o.hourCycle = hour12 === true ? "h12" : hour12 === false ? "h24" : hourCycle || "h12";
        o.hour12 = o.hourCycle === "h11" || o.hourCycle === "h12";
      }
      if (dateStyle !== undefined || timeStyle !== undefined) {
        if (dateStyle !== undefined) o.dateStyle = dateStyle;
        if (timeStyle !== undefined) o.timeStyle = timeStyle;
        return o;
      }
      // What ICU's en-US patterns resolve the widths to.
      if (fields.hour !== undefined && !o.hour12) fields.hour = "2-digit";
      const clock = ["hour", "minute", "second"].filter((name) => fields[name] !== undefined);
      if (clock.length > 1) {
        if (fields.minute !== undefined) fields.minute = "2-digit";
        if (fields.second !== undefined) fields.second = "2-digit";
      }
      if (fields.minute !== undefined && fields.hour !== undefined) fields.minute = "2-digit";
      for (const [name] of COMPONENTS) if (fields[name] !== undefined) o[name] = fields[name];
      return o;
    }

    // The local fields of `time` in the format's zone.
    function __dodo_fieldsAt(o, time) {
      let date = new Date(time), utc = false;
      if (o.zone !== null) {
        date = new Date(time + o.zone.offset(time) * 60000);
        utc = true;
      }
      return {
        year: utc ? date.getUTCFullYear() : date.getFullYear(),
        month: utc ? date.getUTCMonth() : date.getMonth(),
        day: utc ? date.getUTCDate() : date.getDate(),
        weekday: utc ? date.getUTCDay() : date.getDay(),
        hour: utc ? date.getUTCHours() : date.getHours(),
        minute: utc ? date.getUTCMinutes() : date.getMinutes(),
        second: utc ? date.getUTCSeconds() : date.getSeconds(),
        millisecond: utc ? date.getUTCMilliseconds() : date.getMilliseconds(),
      };
    }

    function __dodo_two(number) {
      return String(number).padStart(2, "0");
    }

    function __dodo_text(names, index, width) {
      const name = names[index];
      return width === "long" ? name : width === "short" ? name.slice(0, 3) : name[0];
    }

    function __dodo_dayPeriod(hour, minute, width) {
      if (hour === 12 && minute === 0) return width === "narrow" ? "n" : "noon";
      if (hour >= 6 && hour < 12) return "in the morning";
      if (hour >= 12 && hour < 18) return "in the afternoon";
      if (hour >= 18 && hour < 21) return "in the evening";
      return "at night";
    }

    // The date's parts per the en-US patterns ICU picks for these fields.
    function __dodo_dateParts(o, f) {
      const parts = [];
      const lit = (value) => parts.push({ type: "literal", value });
      const push = (type, value) => parts.push({ type, value });
      const year = () => push("year", o.year === "2-digit" ? __dodo_two(Math.abs(f.year) % 100) : String(f.year));
      const day = () => push("day", o.day === "2-digit" ? __dodo_two(f.day) : String(f.day));
      const weekday = () => push("weekday", __dodo_text(WEEKDAYS, f.weekday, o.weekday));
      const textual = o.month !== undefined && TEXT.includes(o.month);
      const month = () => push("month", textual ? __dodo_text(MONTHS, f.month, o.month)
        : o.month === "2-digit" ? __dodo_two(f.month + 1) : String(f.month + 1));
      const has = (name) => o[name] !== undefined;
      if (textual) {
        if (has("weekday") && has("day")) { weekday(); lit(", "); }
        month();
        if (has("day")) { lit(" "); day(); }
        if (has("year")) { lit(has("day") ? ", " : " "); year(); }
        if (has("weekday") && !has("day")) { lit(" "); weekday(); }
      } else if (has("month")) {
        if (has("weekday") && has("day")) { weekday(); lit(", "); }
        month();
        if (has("day")) { lit("/"); day(); }
        if (has("year")) { lit("/"); year(); }
        if (has("weekday") && !has("day")) { lit(" "); weekday(); }
      } else {
        if (has("year")) year();
        if (has("day")) {
          if (has("year")) { lit(" (day: "); day(); lit(")"); } else day();
        }
        if (has("weekday")) {
          if (parts.length > 0) lit(" ");
          weekday();
        }
      }
      if (has("era")) {
        if (parts.length > 0) lit(" ");
        push("era", o.era === "long" ? "Anno Domini" : o.era === "short" ? "AD" : "A");
      }
      return parts;
    }

    function __dodo_timeParts(o, f, time) {
      const parts = [];
      const lit = (value) => parts.push({ type: "literal", value });
      const push = (type, value) => parts.push({ type, value });
      const has = (name) => o[name] !== undefined;
      const twelve = o.hourCycle === "h11" || o.hourCycle === "h12";
      if (has("hour")) {
        let hour = f.hour;
        if (o.hourCycle === "h12") hour = hour % 12 || 12;
        else if (o.hourCycle === "h11") hour = hour % 12;
        else if (o.hourCycle === "h24") hour = hour || 24;
        push("hour", o.hour === "2-digit" ? __dodo_two(hour) : String(hour));
      }
      if (has("minute")) {
        if (has("hour")) lit(":");
        push("minute", o.minute === "2-digit" ? __dodo_two(f.minute) : String(f.minute));
      }
      if (has("second")) {
        if (has("hour") || has("minute")) lit(":");
        push("second", o.second === "2-digit" ? __dodo_two(f.second) : String(f.second));
      }
      if (has("fractionalSecondDigits")) {
        if (parts.length > 0) lit(".");
        push("fractionalSecond", String(f.millisecond).padStart(3, "0").slice(0, o.fractionalSecondDigits));
      }
      if (has("dayPeriod") && (!has("hour") || twelve)) {
        if (parts.length > 0) lit(" ");
        push("dayPeriod", __dodo_dayPeriod(f.hour, f.minute, o.dayPeriod));
      } else if (has("hour") && twelve) {
        lit("\u202f"); // ICU's narrow no-break space; format() gives a space, as V8's does
        push("dayPeriod", f.hour < 12 ? "AM" : "PM");
      }
      if (has("timeZoneName")) {
        if (parts.length > 0) lit(" ");
        push("timeZoneName", __dodo_zoneName(o, time, o.timeZoneName));
      }
      return parts;
    }

    function __dodo_zoneName(o, time, style) {
      const zone = o.zone || __dodo_localZone();
      if (style === "shortOffset" || style === "longOffset") {
        return __dodo_gmt(zone.offset(time), style === "longOffset");
      }
      return zone.names(time)[style === "long" ? 1 : 0];
    }

    const DATE_STYLES = {
      full: { weekday: "long", month: "long", day: "numeric", year: "numeric" },
      long: { month: "long", day: "numeric", year: "numeric" },
      medium: { month: "short", day: "numeric", year: "numeric" },
      short: { month: "numeric", day: "numeric", year: "2-digit" },
    };
    const TIME_STYLES = {
      full: { hour: "numeric", minute: "2-digit", second: "2-digit", timeZoneName: "long" },
      long: { hour: "numeric", minute: "2-digit", second: "2-digit", timeZoneName: "short" },
      medium: { hour: "numeric", minute: "2-digit", second: "2-digit" },
      short: { hour: "numeric", minute: "2-digit" },
    };
    hidden.push(DATE_STYLES, TIME_STYLES, ...Object.values(DATE_STYLES), ...Object.values(TIME_STYLES));

    function __dodo_formatDate(o, date) {
      const time = date === undefined ? Date.now() : Number(date instanceof Date ? date.getTime() : date);
      if (!Number.isFinite(time) || Math.abs(time) > 8.64e15) throw __dodo_fail(RangeError, "Invalid time value");
      const f = __dodo_fieldsAt(o, time);
      let fields = o, joiner;
      if (o.dateStyle !== undefined || o.timeStyle !== undefined) {
        fields = { hourCycle: o.hourCycle, zone: o.zone, ...(DATE_STYLES[o.dateStyle] || {}),
          ...(TIME_STYLES[o.timeStyle] || {}) };
        if (fields.hour !== undefined && !o.hour12) fields.hour = "2-digit";
        joiner = o.dateStyle === "full" || o.dateStyle === "long" ? " at " : ", ";
      } else {
        joiner = o.month === "long" ? " at " : ", ";
      }
      const dateParts = __dodo_dateParts(fields, f);
      const timeParts = __dodo_timeParts(fields, f, time);
      if (dateParts.length > 0 && timeParts.length > 0) {
        const weekdayOnly = dateParts.length === 1 && dateParts[0].type === "weekday";
        if (weekdayOnly && fields.hour !== undefined) joiner = " ";
        return [...dateParts, { type: "literal", value: joiner }, ...timeParts];
      }
      return dateParts.length > 0 ? dateParts : timeParts;
    }

    // V8 replaces ICU's narrow no-break spaces in format()'s result (not in formatToParts).
    function __dodo_joinDate(parts) {
      return parts.map((p) => p.value).join("").replace(/\u202f/g, " ");
    }

    function __dodo_dateResolved(o) {
      const shown = { ...o };
      delete shown.zone;
      return shown;
    }

    class DateTimeFormat {
      #options;
      #bound;
      constructor(locales, options) {
        this.#options = __dodo_dateOptions(locales, options, "any", "date");
      }
      get format() {
        if (this.#bound === undefined) {
          const options = this.#options;
          this.#bound = (date) => __dodo_joinDate(__dodo_formatDate(options, date));
        }
        return this.#bound;
      }
      formatToParts(date) {
        return __dodo_formatDate(this.#options, date);
      }
      resolvedOptions() {
        return __dodo_dateResolved(this.#options);
      }
      static supportedLocalesOf(locales) {
        return __dodo_supportedLocalesOf(locales);
      }
    }
    Object.defineProperty(DateTimeFormat.prototype, Symbol.toStringTag,
      { value: "Intl.DateTimeFormat", configurable: true });

    const Intl = {};
    __dodo_define(Intl, { DateTimeFormat, NumberFormat });
    Object.defineProperty(Intl, Symbol.toStringTag, { value: "Intl", configurable: true });
    Object.defineProperty(global, "Intl", { value: Intl, writable: true, configurable: true });

    function __dodo_dateString(date, locales, options, required, defaults) {
      const time = Date.prototype.getTime.call(date);
      if (Number.isNaN(time)) return "Invalid Date";
      const o = __dodo_dateOptions(locales, options, required, defaults);
      return __dodo_joinDate(__dodo_formatDate(o, time));
    }

    __dodo_define(Date.prototype, {
      toLocaleString(locales, options) { return __dodo_dateString(this, locales, options, "any", "all"); },
      toLocaleDateString(locales, options) { return __dodo_dateString(this, locales, options, "date", "date"); },
      toLocaleTimeString(locales, options) { return __dodo_dateString(this, locales, options, "time", "time"); },
    });
    __dodo_define(Number.prototype, {
      toLocaleString(locales, options) {
        const value = Number.prototype.valueOf.call(this);
        return __dodo_formatNumber(__dodo_numberOptions(locales, options), value).map((p) => p.value).join("");
      },
    });
    __dodo_define(BigInt.prototype, {
      toLocaleString(locales, options) {
        const value = BigInt.prototype.valueOf.call(this);
        return __dodo_formatNumber(__dodo_numberOptions(locales, options), value).map((p) => p.value).join("");
      },
    });

    // ---- text ---------------------------------------------------------------------------
    function __dodo_utf8(text) {
      const bytes = [];
      for (let index = 0; index < text.length; index++) {
        let code = text.charCodeAt(index);
        if (code >= 0xd800 && code <= 0xdbff && index + 1 < text.length) {
          const next = text.charCodeAt(index + 1);
          if (next >= 0xdc00 && next <= 0xdfff) {
            code = 0x10000 + ((code - 0xd800) << 10) + (next - 0xdc00);
            index++;
          } else code = 0xfffd;
        } else if (code >= 0xd800 && code <= 0xdfff) code = 0xfffd;
        if (code < 0x80) bytes.push(code);
        else if (code < 0x800) bytes.push(0xc0 | (code >> 6), 0x80 | (code & 63));
        else if (code < 0x10000) bytes.push(0xe0 | (code >> 12), 0x80 | ((code >> 6) & 63), 0x80 | (code & 63));
        else bytes.push(0xf0 | (code >> 18), 0x80 | ((code >> 12) & 63), 0x80 | ((code >> 6) & 63), 0x80 | (code & 63));
      }
      return bytes;
    }

    // UTF-8 bytes to text, each malformed sequence a U+FFFD (as the Encoding Standard says),
    // or null at the first one when `fatal`.
    function __dodo_fromUtf8(bytes, fatal) {
      let text = "";
      let chunk = [];
      const flush = () => { text += String.fromCharCode.apply(null, chunk); chunk = []; };
      for (let index = 0; index < bytes.length;) {
        const first = bytes[index];
        let need = 0, code = 0, lower = 0x80, upper = 0xbf;
        if (first < 0x80) { chunk.push(first); index++; if (chunk.length > 4096) flush(); continue; }
        if (first >= 0xc2 && first <= 0xdf) { need = 1; code = first & 31; }
        else if (first >= 0xe0 && first <= 0xef) {
          need = 2; code = first & 15;
          if (first === 0xe0) lower = 0xa0;
          if (first === 0xed) upper = 0x9f;
        } else if (first >= 0xf0 && first <= 0xf4) {
          need = 3; code = first & 7;
          if (first === 0xf0) lower = 0x90;
          if (first === 0xf4) upper = 0x8f;
        } else {
          if (fatal) return null;
          chunk.push(0xfffd); index++;
          continue;
        }
        let seen = 1;
        for (; seen <= need; seen++) {
          const byte = bytes[index + seen];
          if (byte === undefined || byte < lower || byte > upper) break;
          code = (code << 6) | (byte & 63);
          lower = 0x80; upper = 0xbf;
        }
        if (seen <= need) {
          if (fatal) return null;
          chunk.push(0xfffd);
          index += seen;
          continue;
        }
        index += seen;
        if (code >= 0x10000) {
          code -= 0x10000;
          chunk.push(0xd800 + (code >> 10), 0xdc00 + (code & 1023));
        } else chunk.push(code);
        if (chunk.length > 4096) flush();
      }
      flush();
      return text;
    }

    function __dodo_bytesOf(input) {
      if (input === undefined) return new Uint8Array(0);
      if (input instanceof ArrayBuffer) return new Uint8Array(input);
      if (ArrayBuffer.isView(input)) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
      throw __dodo_fail(TypeError, "The \"input\" argument must be an instance of ArrayBuffer or ArrayBufferView");
    }

    class TextEncoder {
      get encoding() { return "utf-8"; }
      encode(input = "") {
        return new Uint8Array(__dodo_utf8(String(input)));
      }
      encodeInto(source, destination) {
        const text = String(source);
        let read = 0, written = 0;
        for (const character of text) {
          const bytes = __dodo_utf8(character);
          if (written + bytes.length > destination.length) break;
          destination.set(bytes, written);
          written += bytes.length;
          read += character.length;
        }
        return { read, written };
      }
    }

    // The Encoding Standard's labels for the encodings decoded here.
    const ENCODINGS = {
      "utf-8": ["utf-8", "utf8", "unicode-1-1-utf-8", "unicode11utf8", "unicode20utf8", "x-unicode20utf8"],
      "windows-1252": ["windows-1252", "latin1", "iso-8859-1", "iso8859-1", "iso88591", "iso_8859-1",
        "iso_8859-1:1987", "l1", "ascii", "us-ascii", "cp1252", "cp819", "csisolatin1", "ibm819",
        "iso-ir-100", "x-cp1252", "ansi_x3.4-1968"],
      "utf-16le": ["utf-16le", "utf-16", "ucs-2", "unicode", "csunicode", "iso-10646-ucs-2", "unicodefeff"],
    };
    hidden.push(ENCODINGS, ...Object.values(ENCODINGS));

    function __dodo_decodeBytes(encoding, bytes, fatal) {
      if (encoding === "utf-8") return __dodo_fromUtf8(bytes, fatal);
      let text = "";
      if (encoding === "windows-1252") { // decoded as Latin-1, as Node.js does
        for (const byte of bytes) text += String.fromCharCode(byte);
        return text;
      }
      for (let index = 0; index + 1 < bytes.length; index += 2) {
        text += String.fromCharCode(bytes[index] | (bytes[index + 1] << 8));
      }
      if (bytes.length % 2 === 1) {
        if (fatal) return null;
        text += "\ufffd";
      }
      return __dodo_usv(text);
    }

    class TextDecoder {
      #encoding;
      #fatal;
      #ignoreBOM;
      constructor(label = "utf-8", options = {}) {
        const name = String(label).trim().toLowerCase();
        this.#encoding = Object.keys(ENCODINGS).find((encoding) => ENCODINGS[encoding].includes(name));
        if (this.#encoding === undefined) {
          throw __dodo_fail(RangeError, "The \"" + label + "\" encoding is not supported");
        }
        this.#fatal = Boolean(options && options.fatal);
        this.#ignoreBOM = Boolean(options && options.ignoreBOM);
      }
      get encoding() { return this.#encoding; }
      get fatal() { return this.#fatal; }
      get ignoreBOM() { return this.#ignoreBOM; }
      decode(input, options) {
        let bytes = __dodo_bytesOf(input);
        if (!this.#ignoreBOM) {
          if (this.#encoding === "utf-8" && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) bytes = bytes.subarray(3);
          if (this.#encoding === "utf-16le" && bytes[0] === 0xff && bytes[1] === 0xfe) bytes = bytes.subarray(2);
        }
        const text = __dodo_decodeBytes(this.#encoding, bytes, this.#fatal);
        if (text === null) throw __dodo_fail(TypeError, "The encoded data was not valid for encoding " + this.#encoding);
        return text;
      }
    }

    const BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    class DOMException extends Error {
      #name;
      constructor(message = "", name = "Error") {
        super(message);
        this.#name = String(name);
      }
      get name() { return this.#name; }
      get code() {
        return { InvalidCharacterError: 5, DataCloneError: 25 }[this.#name] || 0;
      }
    }

    function btoa(data) {
      if (arguments.length === 0) throw __dodo_fail(TypeError, "The \"data\" argument must be specified");
      const text = String(data);
      let out = "";
      for (let index = 0; index < text.length; index += 3) {
        const codes = [text.charCodeAt(index), text.charCodeAt(index + 1), text.charCodeAt(index + 2)];
        for (const code of codes) {
          if (code > 255) throw __dodo_fail(DOMException, "Invalid character", "InvalidCharacterError");
        }
        const [a, b, c] = codes;
        out += BASE64[a >> 2] + BASE64[((a & 3) << 4) | (b >> 4 || 0)]
          + (Number.isNaN(b) ? "=" : BASE64[((b & 15) << 2) | (c >> 6 || 0)])
          + (Number.isNaN(c) ? "=" : BASE64[c & 63]);
      }
      return out;
    }

    function atob(data) {
      if (arguments.length === 0) throw __dodo_fail(TypeError, "The \"data\" argument must be specified");
      let text = String(data).replace(/[\t\n\f\r ]/g, "");
      if (text.length % 4 === 0) text = text.replace(/==?$/, "");
      if (text.length % 4 === 1 || /[^A-Za-z0-9+/]/.test(text)) {
        throw __dodo_fail(DOMException, "Invalid character", "InvalidCharacterError");
      }
      let out = "", buffer = 0, bits = 0;
      for (const character of text) {
        buffer = (buffer << 6) | BASE64.indexOf(character);
        bits += 6;
        if (bits >= 8) {
          bits -= 8;
          out += String.fromCharCode((buffer >> bits) & 255);
        }
      }
      return out;
    }

    // ---- structuredClone ----------------------------------------------------------------
    const ERRORS = { Error, EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError };
    hidden.push(ERRORS);

    function __dodo_uncloneable(value) {
      let shown;
      try { shown = typeof value === "symbol" ? value.toString() : String(value); } catch (_) { shown = "#<Object>"; }
      return __dodo_fail(DOMException, shown + " could not be cloned.", "DataCloneError");
    }

    function structuredClone(value, options) {
      if (arguments.length === 0) throw __dodo_fail(TypeError, "The \"value\" argument must be specified");
      const memory = new Map();
      const clone = (item) => {
        if (typeof item === "function" || typeof item === "symbol") throw __dodo_uncloneable(item);
        if (typeof item !== "object" || item === null) return item;
        if (memory.has(item)) return memory.get(item);
        let copy;
        const tag = Object.prototype.toString.call(item).slice(8, -1);
        if (Array.isArray(item)) {
          copy = new Array(item.length);
          memory.set(item, copy);
          for (const key of Object.keys(item)) copy[key] = clone(item[key]);
          return copy;
        }
        if (item instanceof Date) copy = new Date(item.getTime());
        else if (item instanceof RegExp) copy = new RegExp(item.source, item.flags);
        else if (item instanceof Boolean || item instanceof Number || item instanceof String
          || item instanceof BigInt) copy = Object(item.valueOf());
        else if (item instanceof ArrayBuffer) copy = item.slice(0);
        else if (ArrayBuffer.isView(item)) {
          const buffer = clone(item.buffer);
          copy = item instanceof DataView ? new DataView(buffer, item.byteOffset, item.byteLength)
            : new item.constructor(buffer, item.byteOffset, item.length);
        } else if (item instanceof Map) {
          copy = new Map();
          memory.set(item, copy);
          for (const [key, entry] of item) copy.set(clone(key), clone(entry));
          return copy;
        } else if (item instanceof Set) {
          copy = new Set();
          memory.set(item, copy);
          for (const entry of item) copy.add(clone(entry));
          return copy;
        } else if (item instanceof Error) {
          const name = ERRORS[item.name] ? item.name : "Error";
          copy = new ERRORS[name](item.message);
          memory.set(item, copy);
          if ("stack" in item) copy.stack = item.stack;
          if ("cause" in item) copy.cause = clone(item.cause);
          return copy;
        } else if (tag !== "Object" && tag !== "Arguments"
          || item instanceof WeakMap || item instanceof WeakSet || item instanceof WeakRef
          || item instanceof Promise) {
          throw __dodo_uncloneable(item);
        } else {
          copy = {};
          memory.set(item, copy);
          for (const key of Object.keys(item)) copy[key] = clone(item[key]);
          return copy;
        }
        memory.set(item, copy);
        return copy;
      };
      return clone(value);
    }

    // ---- URL --------------------------------------------------------------------------
    // The WHATWG URL Standard's parser for what handlers meet: special schemes (http, https,
    // ws, wss, ftp, file) with hosts, IPv4 and IPv6 addresses, ports, dot segments and
    // percent-encoding, relative references, and opaque URLs (mailto:, data:). Hosts with
    // non-ASCII letters are lower-cased and punycoded without the full IDNA mapping.
    const SPECIAL = { "http:": 80, "https:": 443, "ws:": 80, "wss:": 443, "ftp:": 21, "file:": null };
    const C0 = (code) => code < 0x20 || code > 0x7e;
    const FRAGMENT_SET = (code) => C0(code) || code === 0x20 || code === 0x22 || code === 0x3c || code === 0x3e || code === 0x60;
    const QUERY_SET = (code) => C0(code) || code === 0x20 || code === 0x22 || code === 0x23 || code === 0x3c || code === 0x3e;
    const SPECIAL_QUERY_SET = (code) => QUERY_SET(code) || code === 0x27;
    const PATH_SET = (code) => QUERY_SET(code) || code === 0x3f || code === 0x5e || code === 0x60 || code === 0x7b || code === 0x7d;
    const USERINFO_SET = (code) => PATH_SET(code) || code === 0x2f || code === 0x3a || code === 0x3b
      || code === 0x3d || code === 0x40 || (code >= 0x5b && code <= 0x5d) || code === 0x7c;
    const FORM_SET = (code) => !((code >= 0x30 && code <= 0x39) || (code >= 0x41 && code <= 0x5a)
      || (code >= 0x61 && code <= 0x7a) || code === 0x2a || code === 0x2d || code === 0x2e || code === 0x5f);
    hidden.push(SPECIAL);

    function __dodo_percentEncode(text, set, spaceAsPlus) {
      let out = "";
      for (const character of text) {
        const code = character.codePointAt(0);
        if (spaceAsPlus && code === 0x20) { out += "+"; continue; }
        if (code < 0x80 && !set(code)) { out += character; continue; }
        for (const byte of __dodo_utf8(character)) {
          out += "%" + byte.toString(16).toUpperCase().padStart(2, "0");
        }
      }
      return out;
    }

    function __dodo_percentDecode(text) {
      const bytes = [];
      for (let index = 0; index < text.length; index++) {
        const code = text.charCodeAt(index);
        if (code === 0x25 && /^[0-9A-Fa-f]{2}$/.test(text.slice(index + 1, index + 3))) {
          bytes.push(parseInt(text.slice(index + 1, index + 3), 16));
          index += 2;
        } else if (code < 0x80) bytes.push(code);
        else bytes.push(...__dodo_utf8(text[index] + (code >= 0xd800 && code <= 0xdbff ? text[++index] || "" : "")));
      }
      return __dodo_fromUtf8(bytes, false);
    }

    function __dodo_invalidURL() {
      return __dodo_fail(TypeError, "Invalid URL");
    }

    function __dodo_ipv4Number(part) {
      if (part === "") return NaN;
      let radix = 10;
      if (/^0[xX]/.test(part)) { part = part.slice(2); radix = 16; }
      else if (part.length > 1 && part[0] === "0") { part = part.slice(1); radix = 8; }
      if (part === "") return 0;
      const valid = radix === 16 ? /^[0-9A-Fa-f]+$/ : radix === 8 ? /^[0-7]+$/ : /^[0-9]+$/;
      return valid.test(part) ? parseInt(part, radix) : NaN;
    }

    // An IPv4 address ("1.2.3.4", "0x7f.1", "2130706433") as dotted decimal; null when the
    // host is no number at all; a throw when it looks like one but is not valid.
    function __dodo_ipv4(host) {
      const parts = host.split(".");
      if (parts[parts.length - 1] === "" && parts.length > 1) parts.pop();
      const last = parts[parts.length - 1];
      if (!/^(0[xX][0-9A-Fa-f]*|[0-9]+)$/.test(last)) return null;
      if (parts.length > 4) throw __dodo_invalidURL();
      const numbers = parts.map(__dodo_ipv4Number);
      if (numbers.some(Number.isNaN)) throw __dodo_invalidURL();
      const head = numbers.slice(0, -1);
      if (head.some((n) => n > 255) || numbers[numbers.length - 1] >= 256 ** (5 - numbers.length)) {
        throw __dodo_invalidURL();
      }
      let address = numbers[numbers.length - 1];
      head.forEach((n, index) => { address += n * 256 ** (3 - index); });
      const out = [];
      for (let index = 0; index < 4; index++) { out.unshift(address % 256); address = Math.floor(address / 256); }
      return out.join(".");
    }

    function __dodo_ipv6(text) {
      const pieces = [];
      let compress = null;
      let rest = text;
      if (rest.startsWith("::")) { compress = 0; rest = rest.slice(2); }
      else if (rest.startsWith(":")) throw __dodo_invalidURL();
      while (rest.length > 0) {
        if (pieces.length === 8) throw __dodo_invalidURL();
        const v4 = /^(\d+\.\d+\.\d+\.\d+)$/.exec(rest);
        if (v4 !== null) {
          const octets = v4[1].split(".").map(Number);
          if (pieces.length > 6 || octets.some((o, i) => o > 255 || (String(o) !== v4[1].split(".")[i]))) throw __dodo_invalidURL();
          pieces.push(octets[0] * 256 + octets[1], octets[2] * 256 + octets[3]);
          rest = "";
          break;
        }
        const match = /^([0-9A-Fa-f]{1,4})(::?|$)/.exec(rest);
        if (match === null) throw __dodo_invalidURL();
        pieces.push(parseInt(match[1], 16));
        rest = rest.slice(match[0].length);
        if (match[2] === "::") {
          if (compress !== null) throw __dodo_invalidURL();
          compress = pieces.length;
        } else if (match[2] === ":" && rest === "") throw __dodo_invalidURL();
      }
      if (compress !== null) {
        const zeros = 8 - pieces.length;
        if (zeros < 1 && pieces.length === 8) throw __dodo_invalidURL();
        pieces.splice(compress, 0, ...new Array(zeros).fill(0));
      }
      if (pieces.length !== 8) throw __dodo_invalidURL();
      let best = -1, bestLength = 1;
      for (let index = 0; index < 8;) {
        let end = index;
        while (end < 8 && pieces[end] === 0) end++;
        if (end - index > bestLength) { best = index; bestLength = end - index; }
        index = end === index ? index + 1 : end;
      }
      let out = "";
      for (let index = 0; index < 8; index++) {
        if (index === best) { out += index === 0 ? "::" : ":"; index += bestLength - 1; continue; }
        out += pieces[index].toString(16) + (index < 7 ? ":" : "");
      }
      return "[" + out + "]";
    }

    function __dodo_punycode(label) {
      const codes = Array.from(label, (c) => c.codePointAt(0));
      let output = codes.filter((c) => c < 0x80).map((c) => String.fromCharCode(c)).join("");
      const basic = output.length;
      let handled = basic;
      if (basic > 0) output += "-";
      let n = 128, delta = 0, bias = 72;
      const digit = (d) => String.fromCharCode(d + 22 + 75 * (d < 26));
      const adapt = (d, points, first) => {
        d = first ? Math.floor(d / 700) : d >> 1;
        d += Math.floor(d / points);
        let k = 0;
        for (; d > 455; k += 36) d = Math.floor(d / 35);
        return k + Math.floor(36 * d / (d + 38));
      };
      while (handled < codes.length) {
        const m = Math.min(...codes.filter((c) => c >= n));
        delta += (m - n) * (handled + 1);
        n = m;
        for (const c of codes) {
          if (c < n) delta++;
          if (c === n) {
            let q = delta;
            for (let k = 36; ; k += 36) {
              const t = k <= bias ? 1 : k >= bias + 26 ? 26 : k - bias;
              if (q < t) break;
              output += digit(t + (q - t) % (36 - t));
              q = Math.floor((q - t) / (36 - t));
            }
            output += digit(q);
            bias = adapt(delta, handled + 1, handled === basic);
            delta = 0;
            handled++;
          }
        }
        delta++;
        n++;
      }
      return "xn--" + output;
    }

    const FORBIDDEN_HOST = /[\u0000\t\n\r #/:<>?@[\\\]^|]/;
    const FORBIDDEN_DOMAIN = /[\u0000-\u001f\t\n\r #%/:<>?@[\\\]^|\u007f]/;

    function __dodo_host(input, special) {
      if (input.startsWith("[")) {
        if (!input.endsWith("]")) throw __dodo_invalidURL();
        return __dodo_ipv6(input.slice(1, -1));
      }
      if (!special) {
        if (FORBIDDEN_HOST.test(input)) throw __dodo_invalidURL();
        return __dodo_percentEncode(input, C0);
      }
      const domain = __dodo_percentDecode(input).toLowerCase().replace(/[\u3002\uff0e\uff61]/g, ".");
      if (domain === "" || FORBIDDEN_DOMAIN.test(domain)) throw __dodo_invalidURL();
      const ascii = domain.split(".").map((label) => (/^[\x00-\x7f]*$/.test(label) ? label : __dodo_punycode(label))).join(".");
      const ipv4 = __dodo_ipv4(ascii);
      return ipv4 === null ? ascii : ipv4;
    }

    function __dodo_isSingleDot(segment) {
      return segment === "." || segment.toLowerCase() === "%2e";
    }

    function __dodo_isDoubleDot(segment) {
      return /^(\.|%2e)(\.|%2e)$/i.test(segment);
    }

    // Append the segments of `path` (already split) to `base`, resolving dot segments.
    function __dodo_resolvePath(base, segments, special, scheme) {
      const path = base.slice();
      segments.forEach((segment, index) => {
        const last = index === segments.length - 1;
        if (__dodo_isDoubleDot(segment)) {
          if (!(scheme === "file:" && path.length === 1 && /^[A-Za-z]:$/.test(path[0]))) path.pop();
          if (last) path.push("");
        } else if (__dodo_isSingleDot(segment)) {
          if (last) path.push("");
        } else {
          path.push(__dodo_percentEncode(segment, PATH_SET));
        }
      });
      return path;
    }

    function __dodo_splitPath(text, special) {
      return text.split(special ? /[/\\]/ : "/");
    }

    // The parsed record of `input` against `base` (a record or null); throws TypeError.
    function __dodo_parseURL(input, base) {
      let text = String(input).replace(/^[\u0000-\u0020]+|[\u0000-\u0020]+$/g, "").replace(/[\t\n\r]/g, "");
      const record = {
        scheme: "", username: "", password: "", host: null, port: null, path: [], opaque: null,
        query: null, fragment: null,
      };
      const hashAt = text.indexOf("#");
      if (hashAt >= 0) {
        record.fragment = __dodo_percentEncode(text.slice(hashAt + 1), FRAGMENT_SET);
        text = text.slice(0, hashAt);
      }
      const schemeMatch = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(text);
      let rest = text;
      if (schemeMatch !== null) {
        record.scheme = schemeMatch[1].toLowerCase() + ":";
        rest = text.slice(schemeMatch[0].length);
      } else {
        if (base === null) throw __dodo_invalidURL();
        if (base.opaque !== null) {
          if (text !== "" || hashAt < 0) throw __dodo_invalidURL();
          return { ...base, path: base.path.slice(), fragment: record.fragment };
        }
        record.scheme = base.scheme;
      }
      const special = record.scheme in SPECIAL;
      const slash = special ? /^[/\\]/ : /^\//;
      const twoSlashes = special ? /^[/\\]{2}/ : /^\/\//;
      // Only a special scheme, or no scheme at all, resolves against the base.
      const relative = base !== null && base.opaque === null && base.scheme === record.scheme
        && (schemeMatch === null || special);
      const takeQuery = (value) => {
        const at = value.indexOf("?");
        if (at < 0) return value;
        record.query = __dodo_percentEncode(value.slice(at + 1), special ? SPECIAL_QUERY_SET : QUERY_SET);
        return value.slice(0, at);
      };
      const absolutePath = (value) => {
        record.path = __dodo_resolvePath([], __dodo_splitPath(takeQuery(value).slice(1), special), special, record.scheme);
        return record;
      };
      const file = record.scheme === "file:";
      if (file ? twoSlashes.test(rest) : relative ? twoSlashes.test(rest) : special || twoSlashes.test(rest)) {
        rest = special && !file ? rest.replace(/^[/\\]*/, "") : rest.slice(2);
        const end = rest.search(special ? /[/\\?]/ : /[/?]/);
        __dodo_authority(record, end < 0 ? rest : rest.slice(0, end), special);
        rest = end < 0 ? "" : rest.slice(end);
        if (rest === "" || rest[0] === "?") {
          takeQuery(rest);
          record.path = special ? [""] : [];
          return record;
        }
        return absolutePath(rest);
      }
      if (relative || (file && base !== null && base.scheme === "file:")) {
        record.username = base.username;
        record.password = base.password;
        record.host = base.host;
        record.port = base.port;
        if (slash.test(rest)) return absolutePath(rest);
        if (rest === "" || rest[0] === "?") {
          record.path = base.path.slice();
          record.query = base.query;
          takeQuery(rest);
          return record;
        }
        rest = takeQuery(rest);
        record.path = __dodo_resolvePath(base.path.slice(0, -1), __dodo_splitPath(rest, special), special, record.scheme);
        return record;
      }
      if (file) {
        record.host = "";
        return absolutePath(slash.test(rest) ? rest : "/" + rest);
      }
      if (special) throw __dodo_invalidURL();
      if (rest.startsWith("/")) return absolutePath(rest);
      record.opaque = __dodo_percentEncode(takeQuery(rest), C0);
      return record;
    }

    // userinfo@host:port into `record`.
    function __dodo_authority(record, authority, special) {
      const at = authority.lastIndexOf("@");
      let hostPort = authority;
      if (at >= 0) {
        const userinfo = authority.slice(0, at);
        const colon = userinfo.indexOf(":");
        record.username = __dodo_percentEncode(colon < 0 ? userinfo : userinfo.slice(0, colon), USERINFO_SET);
        record.password = colon < 0 ? "" : __dodo_percentEncode(userinfo.slice(colon + 1), USERINFO_SET);
        hostPort = authority.slice(at + 1);
        if (hostPort === "") throw __dodo_invalidURL();
      }
      const bracket = hostPort.startsWith("[") ? hostPort.indexOf("]") + 1 : 0;
      const colon = hostPort.indexOf(":", bracket);
      const hostText = colon < 0 ? hostPort : hostPort.slice(0, colon);
      if (colon >= 0) {
        const port = hostPort.slice(colon + 1);
        if (!/^\d*$/.test(port) || hostText === "") throw __dodo_invalidURL();
        if (port !== "") {
          if (Number(port) > 65535 || record.scheme === "file:") throw __dodo_invalidURL();
          record.port = SPECIAL[record.scheme] === Number(port) ? null : Number(port);
        }
      }
      if (hostText === "") {
        if ((special && record.scheme !== "file:") || record.username || record.password) throw __dodo_invalidURL();
        record.host = "";
        return;
      }
      record.host = __dodo_host(hostText, special);
      if (record.scheme === "file:" && record.host === "localhost") record.host = "";
    }

    function __dodo_pathname(record) {
      if (record.opaque !== null) return record.opaque;
      if (record.host === null && record.path.length > 1 && record.path[0] === "") return "/." + "/" + record.path.slice(1).join("/");
      return record.path.length === 0 ? "" : "/" + record.path.join("/");
    }

    function __dodo_hostPort(record) {
      if (record.host === null) return "";
      return record.host + (record.port === null ? "" : ":" + record.port);
    }

    function __dodo_href(record) {
      let out = record.scheme;
      if (record.host !== null) {
        out += "//";
        if (record.username !== "" || record.password !== "") {
          out += record.username + (record.password !== "" ? ":" + record.password : "") + "@";
        }
        out += __dodo_hostPort(record);
      }
      out += __dodo_pathname(record);
      if (record.query !== null) out += "?" + record.query;
      if (record.fragment !== null) out += "#" + record.fragment;
      return out;
    }

    function __dodo_parseForm(text) {
      const list = [];
      for (const piece of text.split("&")) {
        if (piece === "") continue;
        const at = piece.indexOf("=");
        const name = at < 0 ? piece : piece.slice(0, at);
        const value = at < 0 ? "" : piece.slice(at + 1);
        list.push([__dodo_percentDecode(name.replace(/\+/g, " ")), __dodo_percentDecode(value.replace(/\+/g, " "))]);
      }
      return list;
    }

    function __dodo_serialiseForm(list) {
      return list.map(([name, value]) => __dodo_percentEncode(name, FORM_SET, true) + "="
        + __dodo_percentEncode(value, FORM_SET, true)).join("&");
    }

    function __dodo_usv(value) {
      return String(value).replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, "\ufffd");
    }

    let attachParams = null;
    class URLSearchParams {
      #list = [];
      #onChange = null; // sets the query of the URL these are the searchParams of
      static {
        attachParams = (params, onChange, query) => {
          params.#onChange = onChange;
          params.#list = query === null ? [] : __dodo_parseForm(query);
        };
      }
      constructor(init = "") {
        if (typeof init === "object" && init !== null) {
          if (typeof init[Symbol.iterator] === "function") {
            for (const pair of init) {
              const items = Array.from(pair);
              if (items.length !== 2) throw __dodo_fail(TypeError, "Each query pair must be an iterable [name, value] tuple");
              this.#list.push([__dodo_usv(items[0]), __dodo_usv(items[1])]);
            }
          } else {
            for (const key of Reflect.ownKeys(init)) {
              const desc = Reflect.getOwnPropertyDescriptor(init, key);
              if (desc !== undefined && desc.enumerable && typeof key === "string") {
                this.#list.push([__dodo_usv(key), __dodo_usv(init[key])]);
              }
            }
          }
        } else {
          const text = __dodo_usv(init);
          this.#list = __dodo_parseForm(text.startsWith("?") ? text.slice(1) : text);
        }
      }
      #update() {
        if (this.#onChange !== null) this.#onChange(this.#list.length === 0 ? null : __dodo_serialiseForm(this.#list));
      }
      get size() { return this.#list.length; }
      append(name, value) { this.#list.push([__dodo_usv(name), __dodo_usv(value)]); this.#update(); }
      delete(name, value) {
        name = __dodo_usv(name);
        const match = value === undefined ? ([n]) => n === name : ([n, v]) => n === name && v === __dodo_usv(value);
        this.#list = this.#list.filter((pair) => !match(pair));
        this.#update();
      }
      get(name) {
        name = __dodo_usv(name);
        const found = this.#list.find(([n]) => n === name);
        return found === undefined ? null : found[1];
      }
      getAll(name) {
        name = __dodo_usv(name);
        return this.#list.filter(([n]) => n === name).map(([, v]) => v);
      }
      has(name, value) {
        name = __dodo_usv(name);
        return this.#list.some(([n, v]) => n === name && (value === undefined || v === __dodo_usv(value)));
      }
      set(name, value) {
        name = __dodo_usv(name);
        value = __dodo_usv(value);
        const index = this.#list.findIndex(([n]) => n === name);
        if (index < 0) this.#list.push([name, value]);
        else {
          this.#list[index] = [name, value];
          this.#list = this.#list.filter(([n], i) => i <= index || n !== name);
        }
        this.#update();
      }
      sort() {
        const codeUnits = (a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);
        this.#list = this.#list.map((pair, index) => [pair, index])
          .sort((a, b) => codeUnits(a[0], b[0]) || a[1] - b[1]).map(([pair]) => pair);
        this.#update();
      }
      forEach(callback, thisArg) {
        for (let index = 0; index < this.#list.length; index++) {
          const [name, value] = this.#list[index];
          callback.call(thisArg, value, name, this);
        }
      }
      entries() { return this.#list.map(([n, v]) => [n, v])[Symbol.iterator](); }
      keys() { return this.#list.map(([n]) => n)[Symbol.iterator](); }
      values() { return this.#list.map(([, v]) => v)[Symbol.iterator](); }
      [Symbol.iterator]() { return this.entries(); }
      toString() { return __dodo_serialiseForm(this.#list); }
    }
    Object.defineProperty(URLSearchParams.prototype, Symbol.toStringTag, { value: "URLSearchParams", configurable: true });

    class URL {
      #record;
      #params;
      constructor(url, base) {
        const baseRecord = base === undefined ? null : __dodo_parseURL(base, null);
        this.#record = __dodo_parseURL(url, baseRecord);
        this.#params = new URLSearchParams();
        attachParams(this.#params, (query) => { this.#record.query = query; }, this.#record.query);
      }
      static canParse(url, base) {
        try {
          __dodo_parseURL(url, base === undefined ? null : __dodo_parseURL(base, null));
          return true;
        } catch (_) {
          return false;
        }
      }
      static parse(url, base) {
        try {
          return new URL(url, base);
        } catch (_) {
          return null;
        }
      }
      get href() { return __dodo_href(this.#record); }
      set href(value) {
        this.#record = __dodo_parseURL(value, null);
        attachParams(this.#params, (query) => { this.#record.query = query; }, this.#record.query);
      }
      get origin() {
        const r = this.#record;
        if (!(r.scheme in SPECIAL) || r.scheme === "file:") return "null";
        return r.scheme + "//" + __dodo_hostPort(r);
      }
      get protocol() { return this.#record.scheme; }
      set protocol(value) {
        const scheme = String(value).replace(/:.*$/, "").toLowerCase() + ":";
        if (!/^[a-z][a-z0-9+.-]*:$/.test(scheme)) return;
        const r = this.#record;
        if ((scheme in SPECIAL) !== (r.scheme in SPECIAL)) return;
        if (scheme === "file:" && (r.username || r.password || r.port !== null)) return;
        r.scheme = scheme;
        if (r.port === SPECIAL[scheme]) r.port = null;
      }
      get username() { return this.#record.username; }
      set username(value) {
        if (this.#record.host === null || this.#record.host === "" || this.#record.scheme === "file:") return;
        this.#record.username = __dodo_percentEncode(String(value), USERINFO_SET);
      }
      get password() { return this.#record.password; }
      set password(value) {
        if (this.#record.host === null || this.#record.host === "" || this.#record.scheme === "file:") return;
        this.#record.password = __dodo_percentEncode(String(value), USERINFO_SET);
      }
      get host() { return __dodo_hostPort(this.#record); }
      set host(value) { this.#setAuthority(String(value), true); }
      get hostname() { return this.#record.host === null ? "" : this.#record.host; }
      set hostname(value) { this.#setAuthority(String(value), false); }
      get port() { return this.#record.port === null ? "" : String(this.#record.port); }
      set port(value) {
        const r = this.#record;
        if (r.host === null || r.host === "" || r.scheme === "file:") return;
        const text = String(value);
        if (text === "") { r.port = null; return; }
        const digits = /^\d+/.exec(text);
        if (digits === null || Number(digits[0]) > 65535) return;
        r.port = Number(digits[0]) === SPECIAL[r.scheme] ? null : Number(digits[0]);
      }
      #setAuthority(text, withPort) {
        const r = this.#record;
        if (r.opaque !== null) return;
        const end = text.search(/[/\\?#]/);
        const authority = end < 0 ? text : text.slice(0, end);
        try {
          const parsed = __dodo_parseURL(r.scheme + "//" + authority + "/", null);
          if (parsed.host === "" && r.scheme in SPECIAL && r.scheme !== "file:") return;
          r.host = parsed.host;
          if (withPort && /:\d+$/.test(authority)) r.port = parsed.port;
        } catch (_) {
          // An invalid host leaves the URL as it was, as the standard's setters do.
        }
      }
      get pathname() { return __dodo_pathname(this.#record); }
      set pathname(value) {
        const r = this.#record;
        if (r.opaque !== null) return;
        const special = r.scheme in SPECIAL;
        let text = String(value);
        if (text.startsWith("/") || (special && text.startsWith("\\"))) text = text.slice(1);
        r.path = __dodo_resolvePath([], __dodo_splitPath(text, special), special, r.scheme);
      }
      get search() {
        const query = this.#record.query;
        return query === null || query === "" ? "" : "?" + query;
      }
      set search(value) {
        const text = String(value).replace(/^\?/, "");
        const special = this.#record.scheme in SPECIAL;
        this.#record.query = String(value) === "" ? null : __dodo_percentEncode(text, special ? SPECIAL_QUERY_SET : QUERY_SET);
        attachParams(this.#params, (query) => { this.#record.query = query; }, this.#record.query);
      }
      get searchParams() { return this.#params; }
      get hash() {
        const fragment = this.#record.fragment;
        return fragment === null || fragment === "" ? "" : "#" + fragment;
      }
      set hash(value) {
        const text = String(value);
        this.#record.fragment = text === "" ? null : __dodo_percentEncode(text.replace(/^#/, ""), FRAGMENT_SET);
      }
      toString() { return this.href; }
      toJSON() { return this.href; }
    }
    Object.defineProperty(URL.prototype, Symbol.toStringTag, { value: "URL", configurable: true });

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

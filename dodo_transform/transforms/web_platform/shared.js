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

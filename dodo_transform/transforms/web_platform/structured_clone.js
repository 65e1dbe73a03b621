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

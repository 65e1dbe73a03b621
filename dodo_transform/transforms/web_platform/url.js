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

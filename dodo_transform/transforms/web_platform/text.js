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

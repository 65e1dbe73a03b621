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

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

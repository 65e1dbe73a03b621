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

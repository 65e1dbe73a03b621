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

// Plugin configuration: the JSON that a WasmPlugin carries as `pluginConfig`
// and Envoy hands to the plugin at configure time.
//
// The parser is small and has no dependencies: it reads one flat object whose
// values are strings, numbers, booleans or null, which is all this plugin's
// configuration holds, and reports the first error with its byte offset so
// Envoy's log says what is wrong. It runs once per configuration, never per
// request. For nested configuration, extend the parser or use a JSON library
// for AssemblyScript.

export class Config {
  header: string = "allow";
  value: string = "true";
  denyStatus: u32 = 403;
  denyBody: string = "Forbidden by ASM Wasm Plugin, assemblyscript version\n";
  denyContentType: string = "text/plain";
  logDenials: bool = true;
}

/** Result of parsing: either a config or an error message. */
export class ParseResult {
  config: Config | null = null;
  error: string = "";
}

const KIND_STRING: i32 = 1;
const KIND_NUMBER: i32 = 2;
const KIND_BOOL: i32 = 3;
const KIND_NULL: i32 = 4;

class Parser {
  pos: i32 = 0;
  error: string = "";
  // The last value read.
  kind: i32 = 0;
  str: string = "";
  num: f64 = 0;
  flag: bool = false;

  constructor(public text: string) {}

  fail(message: string): bool {
    if (this.error.length == 0) {
      this.error = message + " at offset " + this.pos.toString();
    }
    return false;
  }

  skipSpace(): void {
    while (this.pos < this.text.length) {
      const c = this.text.charCodeAt(this.pos);
      if (c == 0x20 || c == 0x09 || c == 0x0a || c == 0x0d) this.pos++;
      else break;
    }
  }

  peek(): i32 {
    return this.pos < this.text.length ? this.text.charCodeAt(this.pos) : -1;
  }

  expect(c: i32): bool {
    this.skipSpace();
    if (this.peek() != c) {
      return this.fail("expected '" + String.fromCharCode(c) + "'");
    }
    this.pos++;
    return true;
  }

  readString(): bool {
    if (this.peek() != 0x22) return this.fail("expected a string");
    this.pos++;
    let out = "";
    let start = this.pos;
    while (true) {
      if (this.pos >= this.text.length) return this.fail("unterminated string");
      const c = this.text.charCodeAt(this.pos);
      if (c == 0x22) {
        out += this.text.substring(start, this.pos);
        this.pos++;
        break;
      }
      if (c < 0x20) return this.fail("control character in string");
      if (c == 0x5c) {
        out += this.text.substring(start, this.pos);
        this.pos++;
        if (this.pos >= this.text.length) return this.fail("unterminated string");
        const e = this.text.charCodeAt(this.pos);
        this.pos++;
        if (e == 0x22) out += "\"";
        else if (e == 0x5c) out += "\\";
        else if (e == 0x2f) out += "/";
        else if (e == 0x62) out += "\b";
        else if (e == 0x66) out += "\f";
        else if (e == 0x6e) out += "\n";
        else if (e == 0x72) out += "\r";
        else if (e == 0x74) out += "\t";
        else if (e == 0x75) {
          if (this.pos + 4 > this.text.length) return this.fail("bad \\u escape");
          const code = I32.parseInt(this.text.substring(this.pos, this.pos + 4), 16);
          if (isNaN(code)) return this.fail("bad \\u escape");
          out += String.fromCharCode(<i32>code);
          this.pos += 4;
        } else return this.fail("bad escape");
        start = this.pos;
      } else {
        this.pos++;
      }
    }
    this.kind = KIND_STRING;
    this.str = out;
    return true;
  }

  readNumber(): bool {
    const start = this.pos;
    if (this.peek() == 0x2d) this.pos++;
    let digits = 0;
    while (this.pos < this.text.length) {
      const c = this.text.charCodeAt(this.pos);
      if ((c >= 0x30 && c <= 0x39) || c == 0x2e || c == 0x65 || c == 0x45 || c == 0x2b || c == 0x2d) {
        this.pos++;
        digits++;
      } else break;
    }
    if (digits == 0) return this.fail("expected a value");
    const n = parseFloat(this.text.substring(start, this.pos));
    if (isNaN(n)) return this.fail("bad number");
    this.kind = KIND_NUMBER;
    this.num = n;
    return true;
  }

  readWord(word: string): bool {
    if (this.text.substring(this.pos, this.pos + word.length) != word) return this.fail("expected a value");
    this.pos += word.length;
    return true;
  }

  readValue(): bool {
    this.skipSpace();
    const c = this.peek();
    if (c == 0x22) return this.readString();
    if (c == 0x74) { this.kind = KIND_BOOL; this.flag = true; return this.readWord("true"); }
    if (c == 0x66) { this.kind = KIND_BOOL; this.flag = false; return this.readWord("false"); }
    if (c == 0x6e) { this.kind = KIND_NULL; return this.readWord("null"); }
    if (c == 0x7b || c == 0x5b) return this.fail("nested objects and arrays are not supported");
    return this.readNumber();
  }
}

function typeError(key: string, wanted: string): string {
  return "pluginConfig." + key + " must be " + wanted;
}

/**
 * Parses the plugin configuration. An empty configuration means all defaults.
 * Unknown keys are errors, so a typo does not silently fall back to a default.
 */
export function parseConfig(text: string): ParseResult {
  const result = new ParseResult();
  const config = new Config();
  const p = new Parser(text);
  p.skipSpace();
  if (p.pos >= text.length) {
    result.config = config;
    return result;
  }
  if (!p.expect(0x7b)) {
    result.error = "pluginConfig is not a JSON object: " + p.error;
    return result;
  }
  p.skipSpace();
  if (p.peek() == 0x7d) {
    p.pos++;
  } else {
    while (true) {
      p.skipSpace();
      if (!p.readString()) break;
      const key = p.str;
      if (!p.expect(0x3a)) break;
      if (!p.readValue()) break;
      if (p.kind == KIND_NULL) {
        // null keeps the default.
      } else if (key == "header") {
        if (p.kind != KIND_STRING || p.str.length == 0) { result.error = typeError(key, "a non-empty string"); return result; }
        config.header = p.str.toLowerCase();
      } else if (key == "value") {
        if (p.kind != KIND_STRING) { result.error = typeError(key, "a string"); return result; }
        config.value = p.str;
      } else if (key == "denyStatus") {
        if (p.kind != KIND_NUMBER || p.num != Math.floor(p.num) || p.num < 200 || p.num > 599) {
          result.error = typeError(key, "an integer HTTP status from 200 to 599");
          return result;
        }
        config.denyStatus = <u32>p.num;
      } else if (key == "denyBody") {
        if (p.kind != KIND_STRING) { result.error = typeError(key, "a string"); return result; }
        config.denyBody = p.str;
      } else if (key == "denyContentType") {
        if (p.kind != KIND_STRING) { result.error = typeError(key, "a string"); return result; }
        config.denyContentType = p.str;
      } else if (key == "logDenials") {
        if (p.kind != KIND_BOOL) { result.error = typeError(key, "true or false"); return result; }
        config.logDenials = p.flag;
      } else {
        result.error = "pluginConfig has an unknown key \"" + key + "\" (known: header, value, denyStatus, denyBody, denyContentType, logDenials)";
        return result;
      }
      p.skipSpace();
      const c = p.peek();
      if (c == 0x2c) { p.pos++; continue; }
      if (c == 0x7d) { p.pos++; break; }
      p.fail("expected ',' or '}'");
      break;
    }
  }
  if (p.error.length == 0) {
    p.skipSpace();
    if (p.pos < text.length) p.fail("unexpected text after the object");
  }
  if (p.error.length > 0) {
    result.error = "pluginConfig is not valid JSON: " + p.error;
    return result;
  }
  result.config = config;
  return result;
}

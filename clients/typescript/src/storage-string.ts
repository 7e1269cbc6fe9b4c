/**
 * `uploadString`, as Firebase Storage has it: a string's bytes uploaded as
 * a file, the string read as text (UTF-8), base64, base64url or a data URL.
 */
import { invalidArgument } from "./errors.js";
import { utf8Encode } from "./platform.js";
import { checkRef, uploadBytes, type FileRef, type UploadOptions, type UploadResult } from "./storage.js";

/** How {@link uploadString} reads its string (Firebase Storage's `StringFormat`). */
export const StringFormat = {
  /** Text, uploaded as its UTF-8 bytes. */
  RAW: "raw",
  /** Base64 (`+`, `/`); the trailing `=` padding is optional. */
  BASE64: "base64",
  /** Base64url (`-`, `_`); the trailing `=` padding is optional. */
  BASE64URL: "base64url",
  /** A data URL (`data:[<type>][;base64],<data>`, e.g. from `canvas.toDataURL()`); its type is the file's unless `contentType` is given. */
  DATA_URL: "data_url",
} as const;

/** One of {@link StringFormat}'s values. */
export type StringFormat = (typeof StringFormat)[keyof typeof StringFormat];

/**
 * Uploads the bytes `value` stands for in `format` (default `"raw"`) to the
 * file `ref`, as {@link uploadBytes} does with `options`. A string that is
 * not valid in its format is `invalid_argument`, and nothing is sent.
 */
export async function uploadString(ref: FileRef, value: string, format: StringFormat = StringFormat.RAW, options: UploadOptions = {}): Promise<UploadResult> {
  checkRef(ref, "uploadString");
  if (typeof value !== "string") throw invalidArgument(`uploadString() takes a string, got ${typeof value}`);
  const { bytes, contentType } = stringBytes(value, format);
  const typed = contentType !== undefined && options.contentType === undefined ? { ...options, contentType } : options;
  return uploadBytes(ref, bytes, typed);
}

/** The bytes `value` stands for in `format`, and a data URL's media type. */
function stringBytes(value: string, format: StringFormat): { bytes: Uint8Array; contentType?: string } {
  switch (format) {
    case StringFormat.RAW:
      return { bytes: utf8Encode(value) };
    case StringFormat.BASE64:
    case StringFormat.BASE64URL:
      return { bytes: decodeBase64(value, format) };
    case StringFormat.DATA_URL:
      return dataUrlBytes(value);
    default:
      throw invalidArgument(`uploadString(): unknown format ${JSON.stringify(format)} (raw, base64, base64url or data_url)`);
  }
}

/** The two alphabets' last two digits. */
const DIGITS_62_63 = { base64: "+/", base64url: "-_" } as const;

/** Decodes base64 or base64url (padding optional); anything else in the string is refused. */
function decodeBase64(text: string, format: "base64" | "base64url"): Uint8Array {
  const digits = text.replace(/={1,2}$/, "");
  const [d62, d63] = DIGITS_62_63[format];
  const value = (char: string): number => {
    const code = char.charCodeAt(0);
    if (code >= 65 && code <= 90) return code - 65;
    if (code >= 97 && code <= 122) return code - 71;
    if (code >= 48 && code <= 57) return code + 4;
    if (char === d62) return 62;
    if (char === d63) return 63;
    throw invalidArgument(`uploadString(): ${JSON.stringify(char)} is not a ${format} digit`);
  };
  const padded = text.length !== digits.length;
  if (digits.length % 4 === 1 || (padded && text.length % 4 !== 0)) {
    throw invalidArgument(`uploadString(): ${text.length} characters are not ${format}`);
  }
  const bytes = new Uint8Array(Math.floor((digits.length * 3) / 4));
  let at = 0;
  let bits = 0;
  let held = 0;
  for (const char of digits) {
    bits = (bits << 6) | value(char);
    held += 6;
    if (held >= 8) {
      held -= 8;
      bytes[at++] = (bits >> held) & 0xff;
    }
  }
  return bytes;
}

/** A data URL's bytes (base64 or percent-encoded text) and its media type, if it names one. */
function dataUrlBytes(url: string): { bytes: Uint8Array; contentType?: string } {
  const match = /^data:([^,]*),/.exec(url);
  if (match === null) throw invalidArgument("uploadString(): a data URL starts with data: and has a comma");
  const head = match[1] as string;
  const data = url.slice(match[0].length);
  const base64 = /;base64$/i.test(head);
  const type = base64 ? head.slice(0, -";base64".length) : head;
  let bytes: Uint8Array;
  if (base64) {
    bytes = decodeBase64(data, StringFormat.BASE64);
  } else {
    let text: string;
    try {
      text = decodeURIComponent(data);
    } catch {
      throw invalidArgument("uploadString(): the data URL's percent-encoding is not UTF-8");
    }
    bytes = utf8Encode(text);
  }
  return type === "" ? { bytes } : { bytes, contentType: type };
}

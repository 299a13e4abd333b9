// printable(): what may reach a terminal from a bundle or a registry.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { printable } from '../src/util/printable.js';

test('printable escapes C0, DEL, C1, format characters, separators and lone surrogates, and keeps the rest', () => {
  assert.equal(printable('files/falco/driver/8.1.0+driver/x.ko'), 'files/falco/driver/8.1.0+driver/x.ko');
  assert.equal(printable('ünïcode/日本/plugin.zip'), 'ünïcode/日本/plugin.zip');
  assert.equal(printable('\x1b[2K\rOK bundle.tar: signature valid\n'), '\\x1b[2K\\rOK bundle.tar: signature valid\\n');
  assert.equal(printable('\x00\x07\t\x7f\x80\x9b\x9f\xa0'), '\\x00\\x07\\t\\x7f\\x80\\x9b\\x9f\xa0');
  assert.equal(printable('a\u202eb\u2066c\u200bd\ufeffe\u2028f\u2029g'), 'a\\u{202e}b\\u{2066}c\\u{200b}d\\u{feff}e\\u{2028}f\\u{2029}g');
  assert.equal(printable('x\ud800y\udc00'), 'x\\u{d800}y\\u{dc00}');
  assert.equal(printable('\u{e0001}tag'), '\\u{e0001}tag');
});

test('printable is idempotent, so layers may each apply it', () => {
  for (const s of ['\x1b[31mred', 'a\\x1b', '\u202e\r\n', 'plain']) assert.equal(printable(printable(s)), printable(s));
});

// URLs as they come in (flags, the manifest) and as messages repeat them. A user
// name or password written into a URL is refused: airlock never sends it (each
// request goes to the URL's origin, credentials come per host from the flags or
// docker config.json, SPEC §1), and the URL itself ends up in the emitted
// config, README.md, receipts and output. A message never repeats it either.

/** Where credentials for a host go instead, for messages. */
export function credentialAdvice(host: string): string {
  return `put the credentials for ${host} in docker config.json ("auths", or a credential helper; see docs/registries.md), never in a URL`;
}

/**
 * `value` with whatever stands before the last `@` of its authority replaced by
 * `***`: `https://user:pw@host/x` → `https://***@host/x`. Works on what does not
 * parse as a URL too (`user:pw@host/prefix`, `http:user:pw@host`), so a message
 * about a bad value cannot leak the password in it.
 */
export function redactUserinfo(value: string): string {
  const scheme = /^[a-z][a-z0-9+.-]*:\/\/|^https?:/i.exec(value)?.[0] ?? '';
  const rest = value.slice(scheme.length);
  // The authority ends at the path, query or fragment; `\` is left inside so that more is hidden, never less.
  const end = rest.search(/[/?#]/);
  const authority = end === -1 ? rest : rest.slice(0, end);
  const at = authority.lastIndexOf('@');
  return at === -1 ? value : `${scheme}***${rest.slice(at)}`;
}

/** Why `value` is not an http(s) URL airlock takes (one with credentials in it included), or undefined when it is one. */
export function httpUrlProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `"${redactUserinfo(value)}" is not a URL; write an http:// or https:// URL`;
  }
  const shown = redactUserinfo(value);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    // `user:pw@host` parses with the scheme "user:": naming that scheme would show the user name.
    const scheme = shown.toLowerCase().startsWith(url.protocol) ? ` uses ${url.protocol};` : ' is not an http(s) URL;';
    return `"${shown}"${scheme} write an http:// or https:// URL`;
  }
  if (url.username !== '' || url.password !== '') return userinfoProblem(value, url.host);
  return undefined;
}

/** The message for credentials found in `value` (a URL, or a host as in `--registry user:pw@host`). */
export function userinfoProblem(value: string, host: string): string {
  return `"${redactUserinfo(value)}" holds a user name or password, which airlock does not take from a URL; ${credentialAdvice(host)}`;
}

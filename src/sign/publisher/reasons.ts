// Why a signature did not count: one code per cause, each with a sentence a user can act on. The
// wiring step prints these per signature tried (SPEC §9: "each signature tried with why it did not
// count") and may record the code in bundle.json.
export type ReasonCode =
  | 'unknown-format'
  | 'malformed'
  | 'not-key-signed'
  | 'not-keyless'
  | 'bad-signature'
  | 'wrong-digest'
  | 'wrong-subject'
  | 'wrong-issuer'
  | 'untrusted-root'
  | 'no-timestamp'
  | 'bad-timestamp'
  | 'expired-at-signing'
  | 'bad-tlog-entry'
  | 'bad-sct'
  | 'no-trusted-root';

export interface Reason {
  code: ReasonCode;
  message: string;
}

export const reason = (code: ReasonCode, message: string): Reason => ({ code, message });

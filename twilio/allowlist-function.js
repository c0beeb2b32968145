'use strict';

/**
 * Twilio Function: layer 1 of the phone line's security. It runs on Twilio before
 * a call reaches the gateway and lets through only callers on an allowlist.
 *
 * Environment (the Function's `context`):
 *   ALLOWED_NUMBERS  comma-separated E.164 numbers, e.g. "+15551234567, +442079460958"
 *   WEBHOOK_URL      the gateway's https://PUBLIC_URL/incoming-call
 *
 * An allowed caller (event.From) gets <Redirect method="POST">WEBHOOK_URL</Redirect>;
 * anyone else gets <Reject/>. It fails closed: if either setting is missing or
 * unusable, or anything unexpected happens, every call is rejected and the reason is
 * logged. Logs never show a caller's full number, only its last four digits.
 *
 * The `Twilio` global is the twilio npm package, as Twilio Functions provide it.
 */

// What Twilio puts in From when the caller withheld their number: the word spelled on
// a phone keypad (Twilio's help article "Why am I getting calls from these strange
// numbers?") or, since Twilio's 2022 change for withheld caller ids, the word itself.
const WITHHELD_NUMBERS = new Set([
  '+266696687', // ANONYMOUS
  '+7378742833', // RESTRICTED
  '+86282452253', // UNAVAILABLE
  '+8656696', // UNKNOWN
  '+2562533', // BLOCKED
  '+464', // no caller id
]);
const WITHHELD_WORDS = new Set([
  'anonymous',
  'restricted',
  'unavailable',
  'unknown',
  'blocked',
  'private',
  'withheld',
]);

// Characters people and carriers put inside phone numbers.
const SEPARATORS = /[\s().-]/g;
const E164 = /^\+[1-9]\d{1,14}$/;

/**
 * Returns the number as "+digits" (spaces, dashes, parentheses and dots removed,
 * a missing leading + added), or null when it is not a phone number.
 */
function normalize(raw) {
  if (typeof raw !== 'string') {
    return null;
  }
  const compact = raw.replace(SEPARATORS, '');
  const number = compact.startsWith('+') ? compact : `+${compact}`;
  return E164.test(number) ? number : null;
}

/** Returns the number with every digit but the last four replaced by '*'. */
function mask(raw) {
  const digits = String(raw ?? '').replace(/\D/g, '');
  if (digits.length <= 4) {
    return digits.length === 0 ? '(none)' : '*'.repeat(digits.length);
  }
  return `+${'*'.repeat(digits.length - 4)}${digits.slice(-4)}`;
}

/** Parses ALLOWED_NUMBERS into a set of normalized numbers, logging each bad entry. */
function parseAllowed(value) {
  const allowed = new Set();
  String(value ?? '')
    .split(',')
    .forEach((entry, i) => {
      if (entry.trim() === '') {
        return;
      }
      const number = normalize(entry);
      if (number === null) {
        console.warn(`allowlist: ALLOWED_NUMBERS entry ${i + 1} is not a phone number; ignored`);
      } else if (WITHHELD_NUMBERS.has(number)) {
        console.warn(
          `allowlist: ALLOWED_NUMBERS entry ${i + 1} is a withheld-caller-id placeholder; ignored`,
        );
      } else {
        allowed.add(number);
      }
    });
  return allowed;
}

/** Returns the trimmed WEBHOOK_URL, or a reason it cannot be used. */
function parseWebhook(value) {
  const url = typeof value === 'string' ? value.trim() : '';
  if (url === '') {
    return { error: 'WEBHOOK_URL is not set' };
  }
  let parsed;
  try {
    parsed = new URL(url);
  } catch {
    return { error: 'WEBHOOK_URL is not a valid URL' };
  }
  if (parsed.protocol !== 'https:') {
    return { error: 'WEBHOOK_URL must be an https:// URL' };
  }
  return { url };
}

/** Returns the URL to redirect the call to, or null to reject it; logs why. */
function decide(context, event) {
  const call = event.CallSid ? `call ${event.CallSid}` : 'call';
  const webhook = parseWebhook(context.WEBHOOK_URL);
  if (webhook.error) {
    console.error(`allowlist: ${webhook.error}; rejecting every call (${call} rejected)`);
    return null;
  }
  const allowed = parseAllowed(context.ALLOWED_NUMBERS);
  if (allowed.size === 0) {
    console.error(
      `allowlist: ALLOWED_NUMBERS has no valid number; rejecting every call (${call} rejected)`,
    );
    return null;
  }

  const from = typeof event.From === 'string' ? event.From.trim() : '';
  const caller = normalize(from);
  const masked = mask(from);
  if (from === '' || WITHHELD_WORDS.has(from.toLowerCase()) || WITHHELD_NUMBERS.has(caller)) {
    console.warn(`allowlist: ${call} rejected: caller id withheld`);
    return null;
  }
  if (caller === null) {
    console.warn(`allowlist: ${call} from ${masked} rejected: caller id is not a phone number`);
    return null;
  }
  if (!allowed.has(caller)) {
    console.warn(`allowlist: ${call} from ${masked} rejected: not in ALLOWED_NUMBERS`);
    return null;
  }
  console.log(`allowlist: ${call} from ${masked} allowed`);
  return webhook.url;
}

exports.handler = (context, event, callback) => {
  const twiml = new Twilio.twiml.VoiceResponse();
  let target = null;
  try {
    target = decide(context ?? {}, event ?? {});
  } catch (err) {
    console.error(`allowlist: unexpected error, call rejected: ${err && err.message}`);
  }
  if (target === null) {
    twiml.reject();
  } else {
    twiml.redirect({ method: 'POST' }, target);
  }
  callback(null, twiml);
};

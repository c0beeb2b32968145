'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { describe, test } = require('node:test');
const { XMLParser, XMLValidator } = require('fast-xml-parser');

// Twilio Functions provide the helper library as the `Twilio` global.
global.Twilio = require('twilio');
const { handler } = require('../allowlist-function.js');

const WEBHOOK_URL = 'https://gateway.example.com/incoming-call';
const ALICE = '+15551234567';
const BOB = '+442079460958';
const MALLORY = '+15559876543';
const CONFIG = { ALLOWED_NUMBERS: `${ALICE},${BOB}`, WEBHOOK_URL };

const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@' });

/**
 * Invokes the Function as Twilio would and returns the parsed <Response> element and
 * everything it logged. Fails unless callback was called exactly once, with no error
 * and a TwiML VoiceResponse.
 */
function invoke(t, context, event) {
  const logs = [];
  for (const level of ['log', 'info', 'warn', 'error']) {
    t.mock.method(console, level, (...args) => logs.push({ level, text: args.join(' ') }));
  }
  const calls = [];
  handler(context, { CallSid: 'CAtestcall', ...event }, (...args) => calls.push(args));

  assert.equal(calls.length, 1, 'callback must be called exactly once');
  const [err, twiml] = calls[0];
  assert.equal(err, null, 'callback must never get an error');
  assert.ok(twiml instanceof Twilio.twiml.VoiceResponse);
  const xml = twiml.toString();
  assert.equal(XMLValidator.validate(xml), true, `not well-formed XML: ${xml}`);
  const doc = parser.parse(xml);
  assert.ok('Response' in doc, `no <Response> root: ${xml}`);
  return { response: doc.Response, logs, logText: logs.map((l) => l.text).join('\n') };
}

function assertRedirected(response, url = WEBHOOK_URL) {
  assert.deepEqual(response, { Redirect: { '#text': url, '@method': 'POST' } });
}

function assertRejected(response) {
  assert.deepEqual(response, { Reject: '' });
}

describe('allowed callers', () => {
  test('an allowed caller is redirected with POST to WEBHOOK_URL', (t) => {
    assertRedirected(invoke(t, CONFIG, { From: ALICE }).response);
    assertRedirected(invoke(t, CONFIG, { From: BOB }).response);
  });

  test('WEBHOOK_URL is passed through unchanged, query string included', (t) => {
    const url = 'https://gw.example.com:8443/incoming-call?tenant=a&line=2';
    const { response } = invoke(t, { ...CONFIG, WEBHOOK_URL: ` ${url} ` }, { From: ALICE });
    assertRedirected(response, url);
  });

  test('the allowed caller is logged masked too', (t) => {
    const { logs, logText } = invoke(t, CONFIG, { From: ALICE });
    assert.deepEqual(
      logs.map((l) => l.level),
      ['log'],
    );
    assert.match(logText, /CAtestcall/);
    assert.match(logText, /\+\*{7}4567/);
    assert.doesNotMatch(logText, /5551234/);
  });
});

describe('callers not allowed', () => {
  test('a caller not on the list is rejected', (t) => {
    assertRejected(invoke(t, CONFIG, { From: MALLORY }).response);
  });

  for (const [name, from] of [
    ['same last four digits', '+15550004567'],
    ['allowed number as a prefix', `${ALICE}8`],
    ['allowed number without its country code', '5551234567'],
    ['allowed number with an extra leading digit', '+115551234567'],
    ['international 00 prefix', '0015551234567'],
    ['a SIP or client identity', 'client:alice'],
    ['letters inside the number', '+1555123456a'],
  ]) {
    test(`near miss is rejected: ${name}`, (t) => {
      assertRejected(invoke(t, CONFIG, { From: from }).response);
    });
  }
});

describe('formatting and whitespace', () => {
  const callerVariants = [
    '+15551234567',
    '15551234567',
    ' +15551234567 ',
    '+1 555 123 4567',
    '+1-555-123-4567',
    '+1 (555) 123-4567',
    '1.555.123.4567',
    '(+1) 555.123.4567',
    '+1\t555\u00a0123 4567',
  ];
  const listVariants = [
    '+15551234567',
    ' +15551234567 , +442079460958 ',
    '+1 (555) 123-4567,+44 20 7946 0958',
    '15551234567',
    '+44-20-7946-0958,\n1.555.123.4567,',
    ',, +1 555 123 4567 ,,',
  ];
  for (const list of listVariants) {
    for (const from of callerVariants) {
      test(`list ${JSON.stringify(list)} lets in ${JSON.stringify(from)}`, (t) => {
        const { response } = invoke(t, { ...CONFIG, ALLOWED_NUMBERS: list }, { From: from });
        assertRedirected(response);
      });
    }
  }

  test('an unparseable list entry is ignored and logged, the others still work', (t) => {
    const context = { ...CONFIG, ALLOWED_NUMBERS: `not-a-number, ${ALICE}` };
    const allowed = invoke(t, context, { From: ALICE });
    assertRedirected(allowed.response);
    assert.match(allowed.logText, /ALLOWED_NUMBERS entry 1 is not a phone number/);
    assertRejected(invoke(t, context, { From: MALLORY }).response);
  });
});

describe('fails closed on configuration', () => {
  const listProblems = [
    ['missing', undefined],
    ['empty', ''],
    ['only whitespace and commas', ' , ,\n'],
    ['no valid entry', 'alice, bob'],
    ['only withheld placeholders', '+266696687, anonymous'],
  ];
  for (const [name, value] of listProblems) {
    test(`ALLOWED_NUMBERS ${name}: every caller is rejected and the reason logged`, (t) => {
      const context = { WEBHOOK_URL };
      if (value !== undefined) {
        context.ALLOWED_NUMBERS = value;
      }
      for (const from of [ALICE, MALLORY]) {
        const { response, logs } = invoke(t, context, { From: from });
        assertRejected(response);
        assert.ok(
          logs.some((l) => l.level === 'error' && /ALLOWED_NUMBERS has no valid number/.test(l.text)),
          JSON.stringify(logs),
        );
      }
    });
  }

  const urlProblems = [
    ['missing', undefined, /WEBHOOK_URL is not set/],
    ['empty', '', /WEBHOOK_URL is not set/],
    ['blank', '   ', /WEBHOOK_URL is not set/],
    ['not a URL', 'gateway.example.com/incoming-call', /WEBHOOK_URL is not a valid URL/],
    ['plain http', 'http://gateway.example.com/incoming-call', /WEBHOOK_URL must be an https/],
  ];
  for (const [name, value, reason] of urlProblems) {
    test(`WEBHOOK_URL ${name}: every caller is rejected and the reason logged`, (t) => {
      const context = { ALLOWED_NUMBERS: CONFIG.ALLOWED_NUMBERS };
      if (value !== undefined) {
        context.WEBHOOK_URL = value;
      }
      const { response, logs } = invoke(t, context, { From: ALICE });
      assertRejected(response);
      assert.ok(
        logs.some((l) => l.level === 'error' && reason.test(l.text)),
        JSON.stringify(logs),
      );
    });
  }

  test('no environment at all: the call is rejected', (t) => {
    assertRejected(invoke(t, {}, { From: ALICE }).response);
    assertRejected(invoke(t, undefined, { From: ALICE }).response);
  });

  test('an unexpected error rejects the call instead of failing the Function', (t) => {
    const context = {
      WEBHOOK_URL,
      get ALLOWED_NUMBERS() {
        throw new Error('environment unavailable');
      },
    };
    const { response, logs } = invoke(t, context, { From: ALICE });
    assertRejected(response);
    assert.ok(logs.some((l) => l.level === 'error' && /unexpected error/.test(l.text)));
  });
});

describe('withheld caller ids', () => {
  const withheld = [
    undefined,
    '',
    '   ',
    'anonymous',
    'Anonymous',
    'ANONYMOUS',
    'restricted',
    'RESTRICTED',
    'unknown',
    'Unavailable',
    'private',
    'blocked',
    '+266696687',
    '266696687',
    '+7378742833',
    '+86282452253',
    '+8656696',
    '+2562533',
    '+464',
  ];
  for (const from of withheld) {
    test(`${JSON.stringify(from)} is rejected`, (t) => {
      const event = from === undefined ? {} : { From: from };
      const { response, logText } = invoke(t, CONFIG, event);
      assertRejected(response);
      assert.match(logText, /caller id withheld/);
    });
  }

  test('a placeholder on the allowlist is ignored, so withheld callers stay out', (t) => {
    const context = { ...CONFIG, ALLOWED_NUMBERS: `+266696687,${ALICE}` };
    const { response, logText } = invoke(t, context, { From: '+266696687' });
    assertRejected(response);
    assert.match(logText, /entry 1 is a withheld-caller-id placeholder/);
  });
});

describe('logs never show a rejected caller in full', () => {
  // Every run of five digits of the number: none may appear in the logs' digits.
  function assertMasked(logText, number) {
    const digits = number.replace(/\D/g, '');
    const logDigits = logText.replace(/\D/g, '');
    for (let i = 0; i + 5 <= digits.length; i++) {
      assert.ok(
        !logDigits.includes(digits.slice(i, i + 5)),
        `log shows ${digits.slice(i, i + 5)} of ${number}:\n${logText}`,
      );
    }
  }

  for (const from of [MALLORY, '+1 (555) 987-6543', '15559876543', '+4930901820']) {
    test(`rejected caller ${JSON.stringify(from)} is logged with its last 4 digits only`, (t) => {
      const { response, logs, logText } = invoke(t, CONFIG, { From: from });
      assertRejected(response);
      const digits = from.replace(/\D/g, '');
      const expected = `+${'*'.repeat(digits.length - 4)}${digits.slice(-4)}`;
      assert.ok(
        logs.some((l) => l.level === 'warn' && l.text.includes(expected)),
        JSON.stringify(logs),
      );
      assertMasked(logText, from);
    });
  }

  test('a caller id that is not a phone number is masked too', (t) => {
    const from = 'sip:15559876543@evil.example.com';
    const { response, logText } = invoke(t, CONFIG, { From: from });
    assertRejected(response);
    assert.match(logText, /not a phone number/);
    assertMasked(logText, from);
  });
});

test('the Serverless Toolkit layout deploys this very file, as a protected Function', () => {
  const deployed = path.join(__dirname, '..', 'functions', 'allowlist.protected.js');
  assert.equal(
    fs.realpathSync(deployed),
    fs.realpathSync(path.join(__dirname, '..', 'allowlist-function.js')),
  );
});

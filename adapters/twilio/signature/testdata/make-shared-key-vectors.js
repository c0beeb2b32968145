// Computes the test vectors of testdata/twilio-shared-key-vectors.json with
// Twilio's official Node library. Run it in a scratch directory, outside the
// repository:
//
//   npm install twilio@6.3.1 && node make-shared-key-vectors.js > twilio-shared-key-vectors.json
"use strict";
const twilio = require("twilio");
const version = require("twilio/package.json").version;

const key = "shared-key-secret-0123456789abcdef";
const settings256 = "key=webhooks_sharedkey_01hzexample,algorithm=HMAC_SHA256";
const voice = {
  AccountSid: "AC00000000000000000000000000000001",
  ApiVersion: "2010-04-01",
  CallSid: "CA00000000000000000000000000000001",
  CallStatus: "ringing",
  Direction: "inbound",
  From: "+15551230001",
  To: "+15550009999",
};
const message = {
  AccountSid: "AC00000000000000000000000000000001",
  Body: "Olá! ¿Qué tal? 👋 a+b=c & d",
  From: "whatsapp:+15551230001",
  MessageSid: "SM00000000000000000000000000000001",
  NumMedia: "0",
  ProfileName: "Ana María",
  To: "whatsapp:+14155238886",
  WaId: "15551230001",
};

function form(name, settings, url, params, opts = {}) {
  const algorithm = twilio.getSignatureAlgorithm(settings);
  const signedURL = opts.signedURL || url;
  const signKey = opts.signKey || key;
  const signature = twilio.getExpectedTwilioSignature(signKey, signedURL, params, algorithm);
  return {
    name,
    settings_header: settings,
    algorithm,
    signed_url: signedURL,
    url,
    params,
    signature,
    valid: twilio.validateRequest(key, signature, url, params, algorithm),
  };
}

const vectors = [
  form("voice webhook, HMAC_SHA256", settings256, "https://gw.example.com/incoming-call", voice),
  form("messaging webhook, HMAC_SHA256", settings256, "https://gw.example.com/webhook", message),
  form("media stream upgrade, HMAC_SHA256", settings256, "wss://gw.example.com/media-stream", {}),
  form("HMAC_SHA1 named in the header", "key=webhooks_sharedkey_01hzexample,algorithm=HMAC_SHA1", "https://gw.example.com/webhook", message),
  form("no algorithm in the header means HMAC_SHA1", "key=webhooks_sharedkey_01hzexample", "https://gw.example.com/incoming-call", voice),
  form("algorithm in lower case, spaces around", " key = webhooks_sharedkey_01hzexample , algorithm = hmac_sha256 ", "https://gw.example.com/incoming-call", voice),
  form("signed with the default port", settings256, "https://gw.example.com/webhook", message, { signedURL: "https://gw.example.com:443/webhook" }),
  form("query string", settings256, "https://gw.example.com/incoming-call?tenant=a%20b&x=1", voice),
  form("repeated parameter: its values sorted, duplicates once", settings256, "https://gw.example.com/webhook",
    Object.assign({}, message, { MediaUrl0: ["https://b.example/2", "https://a.example/1", "https://b.example/2"] })),
  form("signed with another key", settings256, "https://gw.example.com/webhook", message, { signKey: "not-the-shared-key" }),
  form("signed for another path", settings256, "https://gw.example.com/webhook", message, { signedURL: "https://gw.example.com/incoming-call" }),
];

// An unknown algorithm: validateRequest refuses it (and warns).
const unknown = "key=webhooks_sharedkey_01hzexample,algorithm=HMAC_MD5";
const origWarn = console.warn;
console.warn = () => {};
vectors.push({
  name: "unknown algorithm",
  settings_header: unknown,
  algorithm: twilio.getSignatureAlgorithm(unknown),
  signed_url: "https://gw.example.com/webhook",
  url: "https://gw.example.com/webhook",
  params: message,
  signature: twilio.getExpectedTwilioSignature(key, "https://gw.example.com/webhook", message, "HMAC_SHA256"),
  valid: twilio.validateRequest(key, twilio.getExpectedTwilioSignature(key, "https://gw.example.com/webhook", message, "HMAC_SHA256"),
    "https://gw.example.com/webhook", message, twilio.getSignatureAlgorithm(unknown)),
});
console.warn = origWarn;

// JSON bodies: the URL carries bodySHA256, the signature covers the URL
// alone, and the body must hash to it.
const body = JSON.stringify({ MessageSid: "SM00000000000000000000000000000002", From: "whatsapp:+15551230001", Body: "hi" });
const jsonURL = "https://gw.example.com/webhook?bodySHA256=" + twilio.getExpectedBodyHash(body);
const jsonSig = twilio.getExpectedTwilioSignature(key, jsonURL, {}, "HMAC_SHA256");
const bodies = [
  { name: "JSON body, HMAC_SHA256", body },
  { name: "JSON body changed after signing", body: body.replace("hi", "HI") },
].map((b) => ({
  name: b.name,
  settings_header: settings256,
  algorithm: "HMAC_SHA256",
  url: jsonURL,
  body: b.body,
  signature: jsonSig,
  valid: twilio.validateRequestWithBody(key, jsonSig, jsonURL, b.body, "HMAC_SHA256"),
}));

process.stdout.write(JSON.stringify({
  $comment: "Twilio webhook signatures under a Webhooks Rule's shared key (header X-Twilio-Webhooks-Signature-Settings), " +
    "computed with Twilio's official Node library, the npm package twilio " + version + " (lib/webhooks/webhooks.js: " +
    "getSignatureAlgorithm, getExpectedTwilioSignature, validateRequest, validateRequestWithBody, getExpectedBodyHash), " +
    "by make-shared-key-vectors.js beside this file. shared_key signs every vector unless its name says otherwise; " +
    "valid is the library's verdict for a request to url.",
  shared_key: key,
  library: "twilio@" + version,
  forms: vectors,
  json_bodies: bodies,
}, null, 1) + "\n");

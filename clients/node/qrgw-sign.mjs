// qrgw request signing for partner engineers (PROTOCOL.md §2): RFC 9421 HTTP Message Signatures,
// label "qrgw", RFC 9530 Content-Digest. Node 18+ built-ins only (no npm install).
//
//   import { signRequest, verifyResponse } from "./qrgw-sign.mjs";
//
// CLI:
//   node qrgw-sign.mjs call GATEWAY_URL KEYID PRIVATE_KEY.pem METHOD PATH [BODY]
//       sign, send, fetch the gateway's JWKS, verify the signed answer; prints a JSON line.
//   node qrgw-sign.mjs vector < message.json
//       sign (and verify) an arbitrary RFC 9421 message: used to check this code against the RFC's
//       test vectors. message: {key_pem, public_jwk?, label, components, params, message, signature?}
import crypto from "node:crypto";
import fs from "node:fs";

const COMPONENTS_BODY = ["@method", "@authority", "@path", "@query", "content-digest", "content-type"];
const COMPONENTS = ["@method", "@authority", "@path", "@query"];
const RESPONSE = '("@status" "content-digest" "content-type" "@method";req "@path";req "signature";req;key="qrgw")';

export function contentDigest(body) {
  return "sha-256=:" + crypto.createHash("sha256").update(body).digest("base64") + ":";
}

// The value of one covered component of `msg` = {method, url, status?, headers: {lower-case: value}}.
function component(name, msg) {
  const u = new URL(msg.url);
  switch (name) {
    case "@method": return msg.method.toUpperCase();
    case "@authority": return u.host.toLowerCase();  // URL drops the default port already
    case "@path": return u.pathname || "/";
    case "@query": return u.search || "?";
    case "@status": return String(msg.status);
    default: {
      const v = msg.headers[name];
      if (v === undefined) throw new Error(`covered header ${name} is absent`);
      return String(v).trim();
    }
  }
}

// RFC 9421 §2.5: the signature base for plain (unparameterised) components.
export function signatureBase(components, msg, sigParams) {
  const lines = components.map((c) => `"${c}": ${component(c, msg)}`);
  return lines.join("\n") + `\n"@signature-params": ${sigParams}`;
}

function sigBytes(key, base) {
  // Ed25519 (recommended by the profile): crypto.sign with a null digest.
  return crypto.sign(null, Buffer.from(base, "ascii"), key);
}

// Sign a request: returns the headers to add (Content-Digest, Signature-Input, Signature).
export function signRequest({ method, url, headers = {}, body, keyid, privateKey, created, nonce }) {
  const key = typeof privateKey === "string" ? crypto.createPrivateKey(privateKey) : privateKey;
  const hdrs = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  const out = {};
  const withBody = body !== undefined && body !== null && body.length > 0;
  if (withBody) {
    out["Content-Digest"] = hdrs["content-digest"] = contentDigest(body);
    if (!hdrs["content-type"]) out["Content-Type"] = hdrs["content-type"] = "application/json";
  }
  created = created ?? Math.floor(Date.now() / 1000);
  nonce = nonce ?? crypto.randomBytes(18).toString("base64url");
  const comps = withBody ? COMPONENTS_BODY : COMPONENTS;
  const params = `(${comps.map((c) => `"${c}"`).join(" ")});created=${created};expires=${created + 300}` +
    `;nonce="${nonce}";keyid="${keyid}";alg="ed25519";tag="qrgw-v1"`;
  const base = signatureBase(comps, { method, url, headers: hdrs }, params);
  out["Signature-Input"] = `qrgw=${params}`;
  out["Signature"] = `qrgw=:${sigBytes(key, base).toString("base64")}:`;
  return { headers: out, base };
}

// Verify the gateway's answer to our request (the response profile binds it to our signature).
// `jwks` is the gateway's JWK Set (GET /.well-known/jwks.json). Returns the keyid or throws.
export function verifyResponse({ status, headers, body, reqMethod, reqPath, reqSignature, jwks, now }) {
  const h = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), String(v)]));
  const input = h["signature-input"] || "";
  const m = /^qrgw=(\(.*?\))((?:;[a-z]+=(?:\d+|"[^"]*"))+)$/.exec(input);
  if (!m || m[1] !== RESPONSE) throw new Error("response not signed with the qrgw response profile");
  const p = Object.fromEntries([...m[2].matchAll(/;([a-z]+)=(?:(\d+)|"([^"]*)")/g)].map((x) => [x[1], x[2] ? Number(x[2]) : x[3]]));
  const t = now ?? Math.floor(Date.now() / 1000);
  if (p.tag !== "qrgw-v1" || p.expires < t || p.created > t + 60 || p.expires - p.created > 300) {
    throw new Error("response signature expired or not qrgw-v1");
  }
  const jwk = (jwks.keys || []).find((k) => k.kid === p.keyid);
  if (!jwk) throw new Error(`unknown gateway keyid ${p.keyid}`);
  if (contentDigest(body) !== h["content-digest"]) throw new Error("Content-Digest does not match the body");
  const member = reqSignature.replace(/^qrgw=/, "");
  const base = `"@status": ${status}\n"content-digest": ${h["content-digest"]}\n"content-type": ${h["content-type"]}\n` +
    `"@method";req: ${reqMethod}\n"@path";req: ${reqPath}\n"signature";req;key="qrgw": ${member}\n` +
    `"@signature-params": ${m[1]}${m[2]}`;
  const sig = Buffer.from(/^qrgw=:([A-Za-z0-9+/=]*):$/.exec(h["signature"] || "")?.[1] ?? "", "base64");
  const pub = crypto.createPublicKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x }, format: "jwk" });
  if (!crypto.verify(null, Buffer.from(base, "ascii"), pub, sig)) throw new Error("response signature does not verify");
  return p.keyid;
}

async function call([gateway, keyid, keyFile, method, path, body]) {
  const url = gateway.replace(/\/$/, "") + path;
  const bytes = body === undefined ? undefined : Buffer.from(body, "utf8");
  const { headers, base } = signRequest({ method, url, body: bytes, keyid, privateKey: fs.readFileSync(keyFile, "utf8") });
  const resp = await fetch(url, { method, headers, body: bytes });
  const answer = Buffer.from(await resp.arrayBuffer());
  const jwks = await (await fetch(gateway.replace(/\/$/, "") + "/.well-known/jwks.json")).json();
  let verified = null, error = null;
  try {
    verified = verifyResponse({ status: resp.status, headers: Object.fromEntries(resp.headers), body: answer,
      reqMethod: method, reqPath: new URL(url).pathname, reqSignature: headers["Signature"], jwks });
  } catch (e) { error = e.message; }
  console.log(JSON.stringify({ status: resp.status, verified_keyid: verified, error, base, body: answer.toString("utf8") }));
  return verified ? 0 : 3;
}

function vector() {
  const v = JSON.parse(fs.readFileSync(0, "utf8"));
  const msg = { ...v.message, headers: Object.fromEntries(Object.entries(v.message.headers).map(([k, x]) => [k.toLowerCase(), x])) };
  const sigParams = `(${v.components.map((c) => `"${c}"`).join(" ")})${v.params}`;
  const base = signatureBase(v.components, msg, sigParams);
  const sig = sigBytes(crypto.createPrivateKey(v.key_pem), base).toString("base64");
  const out = { signature_input: `${v.label}=${sigParams}`, signature: `${v.label}=:${sig}:`, base };
  if (v.signature && v.public_jwk) {
    const pub = crypto.createPublicKey({ key: v.public_jwk, format: "jwk" });
    const given = Buffer.from(/=:(.*):$/.exec(v.signature)[1], "base64");
    out.verified = crypto.verify(null, Buffer.from(base, "ascii"), pub, given);
  }
  console.log(JSON.stringify(out));
  return 0;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [cmd, ...rest] = process.argv.slice(2);
  const run = cmd === "call" ? call(rest) : cmd === "vector" ? Promise.resolve(vector()) : null;
  if (!run) { console.error("usage: qrgw-sign.mjs call|vector ..."); process.exit(2); }
  run.then((code) => process.exit(code), (e) => { console.error(e.message); process.exit(1); });
}

// qrgw request signing for partner engineers (PROTOCOL.md §2): RFC 9421 HTTP Message Signatures,
// label "qrgw", RFC 9530 Content-Digest, Ed25519. Java 17, JDK only (no dependencies).
//
//   javac QrgwSign.java
//   java QrgwSign call GATEWAY_URL KEYID PRIVATE_KEY.pem METHOD PATH [BODY]
//       sign, send, fetch the gateway's JWKS, verify the signed answer; prints status, keyid, body.
//   java QrgwSign vector PRIVATE_KEY.pem LABEL "COMPONENTS" PARAMS METHOD URL [name=value ...]
//       sign an arbitrary RFC 9421 message (to check this code against the RFC's test vectors).
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyFactory;
import java.security.MessageDigest;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.Signature;
import java.security.spec.PKCS8EncodedKeySpec;
import java.security.spec.X509EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

public final class QrgwSign {
    static final String RESPONSE =
        "(\"@status\" \"content-digest\" \"content-type\" \"@method\";req \"@path\";req \"signature\";req;key=\"qrgw\")";
    // DER prefix of an Ed25519 SubjectPublicKeyInfo; the 32-byte key follows.
    static final byte[] ED25519_SPKI = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};

    public static String contentDigest(byte[] body) throws Exception {
        byte[] d = MessageDigest.getInstance("SHA-256").digest(body);
        return "sha-256=:" + Base64.getEncoder().encodeToString(d) + ":";
    }

    static PrivateKey privateKey(Path pem) throws Exception {
        String text = Files.readString(pem).replaceAll("-----[A-Z ]+-----", "").replaceAll("\\s", "");
        return KeyFactory.getInstance("Ed25519").generatePrivate(new PKCS8EncodedKeySpec(Base64.getDecoder().decode(text)));
    }

    static PublicKey publicKey(String x) throws Exception {
        byte[] raw = Base64.getUrlDecoder().decode(x);
        byte[] der = new byte[ED25519_SPKI.length + raw.length];
        System.arraycopy(ED25519_SPKI, 0, der, 0, ED25519_SPKI.length);
        System.arraycopy(raw, 0, der, ED25519_SPKI.length, raw.length);
        return KeyFactory.getInstance("Ed25519").generatePublic(new X509EncodedKeySpec(der));
    }

    static byte[] sign(PrivateKey key, String base) throws Exception {
        Signature s = Signature.getInstance("Ed25519");
        s.initSign(key);
        s.update(base.getBytes(StandardCharsets.US_ASCII));
        return s.sign();
    }

    /** One covered component's value (RFC 9421 §2); headers are keyed in lower case. */
    static String component(String name, String method, URI url, Map<String, String> headers) {
        switch (name) {
            case "@method": return method.toUpperCase(Locale.ROOT);
            case "@authority": {
                int port = url.getPort();
                boolean dflt = port == -1 || (port == 80 && "http".equals(url.getScheme()))
                    || (port == 443 && "https".equals(url.getScheme()));
                return url.getHost().toLowerCase(Locale.ROOT) + (dflt ? "" : ":" + port);
            }
            case "@path": return url.getRawPath().isEmpty() ? "/" : url.getRawPath();
            case "@query": return "?" + (url.getRawQuery() == null ? "" : url.getRawQuery());
            default: {
                String v = headers.get(name);
                if (v == null) throw new IllegalArgumentException("covered header " + name + " is absent");
                return v.trim();
            }
        }
    }

    public static String signatureBase(List<String> components, String method, URI url, Map<String, String> headers,
                                       String sigParams) {
        StringBuilder b = new StringBuilder();
        for (String c : components) b.append('"').append(c).append("\": ").append(component(c, method, url, headers)).append('\n');
        return b.append("\"@signature-params\": ").append(sigParams).toString();
    }

    /** Headers to add to a request: Content-Digest and Content-Type (with a body), Signature-Input, Signature. */
    public static Map<String, String> signRequest(String method, URI url, byte[] body, String keyid, PrivateKey key)
            throws Exception {
        Map<String, String> h = new LinkedHashMap<>();
        List<String> comps = new ArrayList<>(List.of("@method", "@authority", "@path", "@query"));
        if (body != null && body.length > 0) {
            h.put("content-digest", contentDigest(body));
            h.put("content-type", "application/json");
            comps.add("content-digest");
            comps.add("content-type");
        }
        long created = System.currentTimeMillis() / 1000;
        byte[] n = new byte[18];
        new SecureRandom().nextBytes(n);
        String nonce = Base64.getUrlEncoder().withoutPadding().encodeToString(n);
        String params = "(\"" + String.join("\" \"", comps) + "\");created=" + created + ";expires=" + (created + 300)
            + ";nonce=\"" + nonce + "\";keyid=\"" + keyid + "\";alg=\"ed25519\";tag=\"qrgw-v1\"";
        String base = signatureBase(comps, method, url, h, params);
        h.put("signature-input", "qrgw=" + params);
        h.put("signature", "qrgw=:" + Base64.getEncoder().encodeToString(sign(key, base)) + ":");
        return h;
    }

    /** Verify the gateway's answer, bound to our request's signature; returns the keyid or throws. */
    public static String verifyResponse(int status, Map<String, String> h, byte[] body, String reqMethod, String reqPath,
                                        String reqSignature, String jwks) throws Exception {
        Matcher m = Pattern.compile("^qrgw=(\\(.*?\\))((?:;[a-z]+=(?:\\d+|\"[^\"]*\"))+)$").matcher(h.getOrDefault("signature-input", ""));
        if (!m.matches() || !m.group(1).equals(RESPONSE)) throw new SecurityException("not the qrgw response profile");
        Map<String, String> p = new LinkedHashMap<>();
        Matcher pm = Pattern.compile(";([a-z]+)=(?:(\\d+)|\"([^\"]*)\")").matcher(m.group(2));
        while (pm.find()) p.put(pm.group(1), pm.group(2) != null ? pm.group(2) : pm.group(3));
        long now = System.currentTimeMillis() / 1000, created = Long.parseLong(p.get("created")), expires = Long.parseLong(p.get("expires"));
        if (!"qrgw-v1".equals(p.get("tag")) || expires < now || created > now + 60 || expires - created > 300)
            throw new SecurityException("response signature expired or not qrgw-v1");
        if (!contentDigest(body).equals(h.get("content-digest"))) throw new SecurityException("Content-Digest mismatch");
        String x = null;
        Matcher km = Pattern.compile("\\{[^{}]*\\}").matcher(jwks);
        while (km.find()) {
            String k = km.group();
            if (k.contains("\"kid\":\"" + p.get("keyid") + "\"")) {
                Matcher xm = Pattern.compile("\"x\":\"([A-Za-z0-9_-]+)\"").matcher(k);
                if (xm.find()) x = xm.group(1);
            }
        }
        if (x == null) throw new SecurityException("unknown gateway keyid " + p.get("keyid"));
        String base = "\"@status\": " + status + "\n\"content-digest\": " + h.get("content-digest") + "\n\"content-type\": "
            + h.get("content-type") + "\n\"@method\";req: " + reqMethod + "\n\"@path\";req: " + reqPath
            + "\n\"signature\";req;key=\"qrgw\": " + reqSignature.replaceFirst("^qrgw=", "")
            + "\n\"@signature-params\": " + m.group(1) + m.group(2);
        Matcher sm = Pattern.compile("^qrgw=:([A-Za-z0-9+/=]*):$").matcher(h.getOrDefault("signature", ""));
        if (!sm.matches()) throw new SecurityException("malformed Signature");
        Signature v = Signature.getInstance("Ed25519");
        v.initVerify(publicKey(x));
        v.update(base.getBytes(StandardCharsets.US_ASCII));
        if (!v.verify(Base64.getDecoder().decode(sm.group(1)))) throw new SecurityException("signature does not verify");
        return p.get("keyid");
    }

    static int call(String[] a) throws Exception {
        String gw = a[1].replaceAll("/$", "");
        URI url = URI.create(gw + a[5]);
        byte[] body = a.length > 6 ? a[6].getBytes(StandardCharsets.UTF_8) : null;
        Map<String, String> h = signRequest(a[4], url, body, a[2], privateKey(Path.of(a[3])));
        HttpRequest.Builder rb = HttpRequest.newBuilder(url).method(a[4],
            body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofByteArray(body));
        h.forEach(rb::header);
        HttpClient client = HttpClient.newHttpClient();
        HttpResponse<byte[]> resp = client.send(rb.build(), HttpResponse.BodyHandlers.ofByteArray());
        Map<String, String> rh = new LinkedHashMap<>();
        resp.headers().map().forEach((k, v) -> rh.put(k.toLowerCase(Locale.ROOT), String.join(", ", v)));
        String jwks = client.send(HttpRequest.newBuilder(URI.create(gw + "/.well-known/jwks.json")).build(),
            HttpResponse.BodyHandlers.ofString()).body();
        System.out.println("status " + resp.statusCode());
        try {
            System.out.println("verified " + verifyResponse(resp.statusCode(), rh, resp.body(), a[4], url.getRawPath(), h.get("signature"), jwks));
        } catch (SecurityException e) {
            System.out.println("rejected " + e.getMessage());
            return 3;
        }
        System.out.println(new String(resp.body(), StandardCharsets.UTF_8));
        return 0;
    }

    static int vector(String[] a) throws Exception {
        Map<String, String> h = new LinkedHashMap<>();
        for (int i = 7; i < a.length; i++) {
            int eq = a[i].indexOf('=');
            h.put(a[i].substring(0, eq).toLowerCase(Locale.ROOT), a[i].substring(eq + 1));
        }
        List<String> comps = List.of(a[3].split(" "));
        String sigParams = "(\"" + String.join("\" \"", comps) + "\")" + a[4];
        String base = signatureBase(comps, a[5], URI.create(a[6]), h, sigParams);
        System.out.println(a[2] + "=" + sigParams);
        System.out.println(a[2] + "=:" + Base64.getEncoder().encodeToString(sign(privateKey(Path.of(a[1])), base)) + ":");
        return 0;
    }

    public static void main(String[] a) throws Exception {
        int code = a.length > 0 && a[0].equals("call") && a.length >= 6 ? call(a)
            : a.length >= 7 && a[0].equals("vector") ? vector(a) : -1;
        if (code < 0) {
            System.err.println("usage: QrgwSign call GATEWAY_URL KEYID KEY.pem METHOD PATH [BODY] | vector ...");
            code = 2;
        }
        System.exit(code);
    }
}

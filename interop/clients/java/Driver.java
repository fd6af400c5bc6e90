// The FuseSource MQTT client (Debian's libmqtt-client-java, MQTT 3.1.1) behind the interop line protocol
// (interop/clients/driver.py describes the operations). Run as a single source file:
//   java -cp /usr/share/java/mqtt-client.jar:... Driver.java
// The library's received Message has no QoS or RETAIN accessor: those are reported as null. It does not
// expose the CONNACK either (session_present null). Reconnection is off (one connect attempt).
import java.io.*;
import java.nio.charset.StandardCharsets;
import java.nio.file.*;
import java.security.*;
import java.security.cert.*;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.*;
import java.util.concurrent.*;
import javax.net.ssl.*;
import org.fusesource.mqtt.client.*;

public class Driver {
    static final PrintStream OUT = new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);

    static class Conn {
        FutureConnection connection;
        final LinkedBlockingQueue<Map<String, Object>> inbox = new LinkedBlockingQueue<>();
        Thread reader;
    }

    static final Map<String, Conn> CONNECTIONS = new HashMap<>();

    public static void main(String[] args) throws Exception {
        System.setOut(System.err); // the library must not write into the protocol stream
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            Map<String, Object> request;
            try {
                request = (Map<String, Object>) new Json(line).value();
            } catch (RuntimeException e) {
                continue;
            }
            Map<String, Object> answer;
            try {
                answer = handle(request);
                answer.put("ok", true);
            } catch (Throwable e) {
                answer = new LinkedHashMap<>();
                answer.put("ok", false);
                answer.put("error", e.getClass().getSimpleName() + ": " + e.getMessage());
            }
            answer.put("id", request.get("id"));
            OUT.println(Json.write(answer));
        }
        reset();
        System.exit(0);
    }

    static Conn get(Map<String, Object> a) {
        Conn c = CONNECTIONS.get((String) a.get("conn"));
        if (c == null || c.connection == null) throw new IllegalStateException("no connection " + a.get("conn"));
        return c;
    }

    static long seconds(Object value, long fallback) {
        return value == null ? fallback : (long) Math.ceil(((Number) value).doubleValue() * 1000);
    }

    static Map<String, Object> handle(Map<String, Object> a) throws Exception {
        String op = (String) a.get("op");
        Map<String, Object> r = new LinkedHashMap<>();
        switch (op) {
            case "hello": {
                r.put("library", "fusesource-mqtt-client");
                Package p = MQTT.class.getPackage();
                String version = p != null && p.getImplementationVersion() != null ? p.getImplementationVersion() : jarVersion();
                r.put("version", version);
                r.put("features", List.of("3.1.1", "tls", "client_certificate", "will"));
                return r;
            }
            case "connect": {
                Conn old = CONNECTIONS.get((String) a.get("conn"));
                if (old != null) close(old);
                Conn c = new Conn();
                if (old != null) c.inbox.addAll(old.inbox);
                CONNECTIONS.put((String) a.get("conn"), c);
                if (!"3.1.1".equals(a.get("version"))) throw new IllegalArgumentException("MQTT 3.1.1 only");
                MQTT mqtt = new MQTT();
                String transport = (String) a.getOrDefault("transport", "tcp");
                if ("ws".equals(transport)) throw new IllegalArgumentException("no WebSocket transport");
                mqtt.setHost(("tls".equals(transport) ? "tls://" : "tcp://") + a.get("host") + ":" + ((Number) a.get("port")).intValue());
                if ("tls".equals(transport)) mqtt.setSslContext(sslContext((String) a.get("ca"), (String) a.get("cert"), (String) a.get("key")));
                mqtt.setVersion("3.1.1");
                mqtt.setClientId((String) a.get("client_id"));
                mqtt.setCleanSession(!Boolean.FALSE.equals(a.get("clean")));
                mqtt.setKeepAlive((short) ((Number) a.getOrDefault("keepalive", 30)).intValue());
                mqtt.setConnectAttemptsMax(1);
                mqtt.setReconnectAttemptsMax(0);
                if (a.get("username") != null) { mqtt.setUserName((String) a.get("username")); mqtt.setPassword((String) a.get("password")); }
                Map<String, Object> will = (Map<String, Object>) a.get("will");
                if (will != null) {
                    mqtt.setWillTopic((String) will.get("topic"));
                    mqtt.setWillMessage((String) will.getOrDefault("payload", ""));
                    mqtt.setWillQos(QoS.values()[((Number) will.getOrDefault("qos", 0)).intValue()]);
                    mqtt.setWillRetain(Boolean.TRUE.equals(will.get("retain")));
                }
                c.connection = mqtt.futureConnection();
                c.connection.connect().await(seconds(a.get("timeout"), 10000), TimeUnit.MILLISECONDS);
                final FutureConnection connection = c.connection;
                c.reader = new Thread(() -> {
                    try {
                        while (true) {
                            Message m = connection.receive().await();
                            Map<String, Object> item = new LinkedHashMap<>();
                            item.put("topic", m.getTopic());
                            item.put("payload", new String(m.getPayload(), StandardCharsets.UTF_8));
                            item.put("qos", null);
                            item.put("retain", null);
                            item.put("properties", new LinkedHashMap<>());
                            c.inbox.add(item);
                            m.ack();
                        }
                    } catch (Exception e) {
                        // the connection ended
                    }
                });
                c.reader.setDaemon(true);
                c.reader.start();
                r.put("session_present", null);
                r.put("reason_code", 0);
                r.put("properties", new LinkedHashMap<>());
                return r;
            }
            case "subscribe": {
                Conn c = get(a);
                byte[] granted = c.connection.subscribe(new Topic[]{new Topic((String) a.get("topic"),
                        QoS.values()[((Number) a.getOrDefault("qos", 0)).intValue()])}).await(10, TimeUnit.SECONDS);
                List<Object> codes = new ArrayList<>();
                for (byte b : granted) codes.add(b & 0xff);
                r.put("granted", codes);
                return r;
            }
            case "unsubscribe": {
                get(a).connection.unsubscribe(new String[]{(String) a.get("topic")}).await(10, TimeUnit.SECONDS);
                return r;
            }
            case "publish": {
                if (a.get("properties") != null) throw new IllegalArgumentException("no MQTT 5 properties");
                get(a).connection.publish((String) a.get("topic"), ((String) a.getOrDefault("payload", "")).getBytes(StandardCharsets.UTF_8),
                        QoS.values()[((Number) a.getOrDefault("qos", 0)).intValue()], Boolean.TRUE.equals(a.get("retain")))
                        .await(seconds(a.get("timeout"), 10000), TimeUnit.MILLISECONDS);
                return r;
            }
            case "receive": {
                Conn c = CONNECTIONS.get((String) a.get("conn"));
                if (c == null) throw new IllegalStateException("no connection " + a.get("conn"));
                int count = ((Number) a.getOrDefault("count", 1)).intValue();
                long deadline = System.currentTimeMillis() + seconds(a.get("timeout"), 2000);
                List<Object> messages = new ArrayList<>();
                while (messages.size() < count) {
                    long left = deadline - System.currentTimeMillis();
                    if (left <= 0) break;
                    Map<String, Object> m = c.inbox.poll(left, TimeUnit.MILLISECONDS);
                    if (m == null) break;
                    messages.add(m);
                }
                r.put("messages", messages);
                return r;
            }
            case "status": {
                Conn c = CONNECTIONS.get((String) a.get("conn"));
                r.put("connected", c != null && c.connection != null && c.connection.isConnected());
                return r;
            }
            case "disconnect": {
                close(get(a));
                return r;
            }
            case "reset": {
                reset();
                return r;
            }
            default:
                throw new IllegalArgumentException("unknown operation " + op);
        }
    }

    static String jarVersion() {
        try {
            Properties p = new Properties();
            p.load(MQTT.class.getResourceAsStream("/META-INF/maven/org.fusesource.mqtt-client/mqtt-client/pom.properties"));
            return p.getProperty("version", "unknown");
        } catch (Exception e) {
            return "unknown";
        }
    }

    static void close(Conn c) {
        FutureConnection connection = c.connection;
        c.connection = null;
        if (connection != null) {
            try {
                connection.disconnect().await(2, TimeUnit.SECONDS);
            } catch (Exception e) {
                try { connection.kill().await(1, TimeUnit.SECONDS); } catch (Exception ignored) { }
            }
        }
        if (c.reader != null) c.reader.interrupt();
    }

    static void reset() {
        for (Conn c : CONNECTIONS.values()) close(c);
        CONNECTIONS.clear();
    }

    static SSLContext sslContext(String ca, String cert, String key) throws Exception {
        CertificateFactory factory = CertificateFactory.getInstance("X.509");
        KeyStore trust = KeyStore.getInstance(KeyStore.getDefaultType());
        trust.load(null, null);
        try (InputStream s = new FileInputStream(ca)) { trust.setCertificateEntry("ca", factory.generateCertificate(s)); }
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(trust);
        KeyManager[] keyManagers = null;
        if (cert != null) {
            String pem = Files.readString(Path.of(key)).replaceAll("-----[A-Z ]+-----", "").replaceAll("\\s", "");
            PrivateKey privateKey = KeyFactory.getInstance("EC").generatePrivate(new PKCS8EncodedKeySpec(Base64.getDecoder().decode(pem)));
            java.security.cert.Certificate certificate;
            try (InputStream s = new FileInputStream(cert)) { certificate = factory.generateCertificate(s); }
            KeyStore keys = KeyStore.getInstance(KeyStore.getDefaultType());
            keys.load(null, null);
            keys.setKeyEntry("client", privateKey, new char[0], new java.security.cert.Certificate[]{certificate});
            KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
            kmf.init(keys, new char[0]);
            keyManagers = kmf.getKeyManagers();
        }
        SSLContext context = SSLContext.getInstance("TLS");
        context.init(keyManagers, tmf.getTrustManagers(), null);
        return context;
    }

    /** Just enough JSON for the line protocol: objects, arrays, strings, numbers, true, false, null. */
    static final class Json {
        private final String s;
        private int i;

        Json(String s) { this.s = s; }

        Object value() {
            skip();
            char c = s.charAt(i);
            if (c == '{') {
                Map<String, Object> m = new LinkedHashMap<>();
                i++; skip();
                if (s.charAt(i) == '}') { i++; return m; }
                while (true) {
                    skip(); String k = string(); skip(); i++; // ':'
                    m.put(k, value()); skip();
                    if (s.charAt(i++) == '}') return m;
                }
            }
            if (c == '[') {
                List<Object> l = new ArrayList<>();
                i++; skip();
                if (s.charAt(i) == ']') { i++; return l; }
                while (true) {
                    l.add(value()); skip();
                    if (s.charAt(i++) == ']') return l;
                }
            }
            if (c == '"') return string();
            if (s.startsWith("true", i)) { i += 4; return true; }
            if (s.startsWith("false", i)) { i += 5; return false; }
            if (s.startsWith("null", i)) { i += 4; return null; }
            int start = i;
            while (i < s.length() && "+-0123456789.eE".indexOf(s.charAt(i)) >= 0) i++;
            String n = s.substring(start, i);
            return n.contains(".") || n.contains("e") || n.contains("E") ? (Object) Double.parseDouble(n) : (Object) Long.parseLong(n);
        }

        private void skip() { while (i < s.length() && Character.isWhitespace(s.charAt(i))) i++; }

        private String string() {
            StringBuilder b = new StringBuilder();
            i++; // opening quote
            while (true) {
                char c = s.charAt(i++);
                if (c == '"') return b.toString();
                if (c == '\\') {
                    char e = s.charAt(i++);
                    switch (e) {
                        case 'n': b.append('\n'); break;
                        case 't': b.append('\t'); break;
                        case 'r': b.append('\r'); break;
                        case 'b': b.append('\b'); break;
                        case 'f': b.append('\f'); break;
                        case 'u': b.append((char) Integer.parseInt(s.substring(i, i + 4), 16)); i += 4; break;
                        default: b.append(e);
                    }
                } else b.append(c);
            }
        }

        static String write(Object o) {
            if (o == null) return "null";
            if (o instanceof String) {
                StringBuilder b = new StringBuilder("\"");
                for (char c : ((String) o).toCharArray()) {
                    if (c == '"' || c == '\\') b.append('\\').append(c);
                    else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
                    else b.append(c);
                }
                return b.append('"').toString();
            }
            if (o instanceof Map) {
                StringJoiner j = new StringJoiner(",", "{", "}");
                for (Map.Entry<?, ?> e : ((Map<?, ?>) o).entrySet()) j.add(write(String.valueOf(e.getKey())) + ":" + write(e.getValue()));
                return j.toString();
            }
            if (o instanceof Collection) {
                StringJoiner j = new StringJoiner(",", "[", "]");
                for (Object e : (Collection<?>) o) j.add(write(e));
                return j.toString();
            }
            return String.valueOf(o);
        }
    }
}

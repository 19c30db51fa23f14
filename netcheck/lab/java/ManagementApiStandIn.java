/*
 * The lab's stand-in for the Management API (k8ssandra/management-api-for-apache-cassandra).
 *
 * The real API's agent jar is not published to Maven Central, so a lab pod runs this instead.
 * It answers the paths netcheck reads with the real API's shapes, from the real node next to
 * it (its local JMX, as nodetool reads it):
 *   GET /api/v0/probes/liveness          200 "OK" while this process runs
 *   GET /api/v0/probes/readiness         200 "OK" when Cassandra serves requests, else 500
 *   GET /api/v0/metadata/endpoints       {"entity": [{ApplicationState name: value, ...,
 *                                         "ENDPOINT_IP", "IS_ALIVE", "CLUSTER_NAME",
 *                                         "PARTITIONER", "IS_LOCAL"}]}, every value a string
 *   GET /api/v0/metadata/versions/release  the release version, text
 * A Cassandra that does not answer gives 500 "Internal connection to Cassandra closed", as
 * the real API's handler does. Usage: ManagementApiStandIn BIND_ADDRESS PORT JMX_PORT
 */

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executors;
import javax.management.MBeanServerConnection;
import javax.management.ObjectName;
import javax.management.remote.JMXConnector;
import javax.management.remote.JMXConnectorFactory;
import javax.management.remote.JMXServiceURL;

public final class ManagementApiStandIn {
  private static final String CLOSED = "Internal connection to Cassandra closed";
  private static String jmxUrl;
  private static String localAddress;

  public static void main(String[] args) throws IOException {
    localAddress = args[0];
    jmxUrl = "service:jmx:rmi:///jndi/rmi://127.0.0.1:" + args[2] + "/jmxrmi";
    HttpServer server = HttpServer.create(new InetSocketAddress(args[0], Integer.parseInt(args[1])), 16);
    server.createContext("/", ManagementApiStandIn::handle);
    server.setExecutor(Executors.newFixedThreadPool(2));
    server.start();
  }

  private static void handle(HttpExchange exchange) throws IOException {
    int status = 200;
    String type = "text/plain";
    String body;
    try {
      if (!"GET".equals(exchange.getRequestMethod())) {
        status = 405;
        body = "";
      } else {
        switch (exchange.getRequestURI().getPath()) {
          case "/api/v0/probes/liveness":
            body = "OK";
            break;
          case "/api/v0/probes/readiness":
            if (ready()) {
              body = "OK";
            } else {
              status = 500;
              body = "";
            }
            break;
          case "/api/v0/metadata/endpoints":
            type = "application/json";
            body = "{\"entity\":" + endpoints() + "}";
            break;
          case "/api/v0/metadata/versions/release":
            body = String.valueOf(attribute("org.apache.cassandra.db:type=StorageService", "ReleaseVersion"));
            break;
          default:
            status = 404;
            body = "";
        }
      }
    } catch (IOException e) {
      status = 500;
      type = "text/plain";
      body = CLOSED;
    } catch (Exception e) {
      status = 500;
      type = "text/plain";
      body = String.valueOf(e.getLocalizedMessage());
    }
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    exchange.getResponseHeaders().set("Content-Type", type);
    exchange.sendResponseHeaders(status, bytes.length == 0 ? -1 : bytes.length);
    try (OutputStream out = exchange.getResponseBody()) {
      out.write(bytes);
    }
  }

  private static Object attribute(String bean, String name) throws Exception {
    try (JMXConnector c = JMXConnectorFactory.connect(new JMXServiceURL(jmxUrl))) {
      return c.getMBeanServerConnection().getAttribute(new ObjectName(bean), name);
    }
  }

  /** The real API runs SELECT * FROM system.local: native transport up in NORMAL mode. */
  private static boolean ready() throws Exception {
    try (JMXConnector c = JMXConnectorFactory.connect(new JMXServiceURL(jmxUrl))) {
      MBeanServerConnection m = c.getMBeanServerConnection();
      ObjectName ss = new ObjectName("org.apache.cassandra.db:type=StorageService");
      return "NORMAL".equals(m.getAttribute(ss, "OperationMode"))
          && Boolean.TRUE.equals(m.getAttribute(ss, "NativeTransportRunning"));
    }
  }

  /** Gossip's endpoint states (FailureDetector, as `nodetool gossipinfo` reads them). */
  private static String endpoints() throws Exception {
    try (JMXConnector c = JMXConnectorFactory.connect(new JMXServiceURL(jmxUrl))) {
      MBeanServerConnection m = c.getMBeanServerConnection();
      ObjectName fd = new ObjectName("org.apache.cassandra.net:type=FailureDetector");
      ObjectName ss = new ObjectName("org.apache.cassandra.db:type=StorageService");
      String states = (String) m.getAttribute(fd, "AllEndpointStatesWithPort");
      @SuppressWarnings("unchecked")
      Map<String, String> simple = (Map<String, String>) m.getAttribute(fd, "SimpleStatesWithPort");
      String cluster = String.valueOf(m.getAttribute(ss, "ClusterName"));
      String partitioner = String.valueOf(m.getAttribute(ss, "PartitionerName"));
      List<Map<String, String>> out = new ArrayList<>();
      Map<String, String> current = null;
      for (String line : states.split("\n")) {
        if (line.isEmpty()) {
          continue;
        }
        if (!line.startsWith(" ")) {
          String key = line.trim();
          String ip = key.substring(key.indexOf('/') + 1);
          ip = ip.substring(0, ip.lastIndexOf(':')).replace("[", "").replace("]", "");
          current = new LinkedHashMap<>();
          current.put("ENDPOINT_IP", ip);
          current.put("IS_ALIVE", String.valueOf("UP".equals(simple.get(key))));
          current.put("PARTITIONER", partitioner);
          current.put("CLUSTER_NAME", cluster);
          current.put("IS_LOCAL", String.valueOf(ip.equals(localAddress)));
          out.add(current);
          continue;
        }
        String[] parts = line.trim().split(":", 3);
        if (current == null || parts.length < 3) {
          continue; // generation and heartbeat are not application states
        }
        if (parts[0].equals("TOKENS")) {
          @SuppressWarnings("unchecked")
          List<String> tokens = (List<String>) m.invoke(ss, "getTokens",
              new Object[] {current.get("ENDPOINT_IP")}, new String[] {"java.lang.String"});
          current.put("TOKENS", String.join(",", tokens));
        } else {
          current.put(parts[0], parts[2]);
        }
      }
      StringBuilder json = new StringBuilder("[");
      for (int i = 0; i < out.size(); i++) {
        json.append(i == 0 ? "{" : ",{");
        int j = 0;
        for (Map.Entry<String, String> e : out.get(i).entrySet()) {
          json.append(j++ == 0 ? "" : ",").append(quote(e.getKey())).append(':').append(quote(e.getValue()));
        }
        json.append('}');
      }
      return json.append(']').toString();
    }
  }

  private static String quote(String s) {
    StringBuilder b = new StringBuilder("\"");
    for (char ch : s.toCharArray()) {
      if (ch == '"' || ch == '\\') {
        b.append('\\').append(ch);
      } else if (ch < 0x20) {
        b.append(String.format("\\u%04x", (int) ch));
      } else {
        b.append(ch);
      }
    }
    return b.append('"').toString();
  }
}

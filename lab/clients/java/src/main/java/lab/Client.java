package lab;

import com.datastax.oss.driver.api.core.CqlSession;
import com.datastax.oss.driver.api.core.CqlSessionBuilder;
import com.datastax.oss.driver.api.core.DefaultConsistencyLevel;
import com.datastax.oss.driver.api.core.config.DefaultDriverOption;
import com.datastax.oss.driver.api.core.config.DriverConfigLoader;
import com.datastax.oss.driver.api.core.context.DriverContext;
import com.datastax.oss.driver.api.core.cql.BatchStatement;
import com.datastax.oss.driver.api.core.cql.BatchStatementBuilder;
import com.datastax.oss.driver.api.core.cql.BatchType;
import com.datastax.oss.driver.api.core.cql.PreparedStatement;
import com.datastax.oss.driver.api.core.cql.SimpleStatement;
import com.datastax.oss.driver.api.core.cql.Statement;
import com.datastax.oss.driver.api.core.session.ProgrammaticArguments;
import com.datastax.oss.driver.internal.core.channel.PassThroughWriteCoalescer;
import com.datastax.oss.driver.internal.core.channel.WriteCoalescer;
import com.datastax.oss.driver.internal.core.context.DefaultDriverContext;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Drives the lab workload through the Java driver 4.x and prints one JSON line.
 *
 * <p>Same workload as lab/clients/gocql: per request index i, 50% prepared INSERT, 30% prepared
 * SELECT, 20% plain QUERY (literal values, not prepared), one UNLOGGED BATCH of 5 prepared inserts at
 * i == N/2. A semaphore keeps C requests in flight. {@code --coalescer passthrough} swaps the driver's
 * DefaultWriteCoalescer (one flush per event-loop pass) for its PassThroughWriteCoalescer
 * (writeAndFlush per request); the driver has no config option for that, only this context hook.
 */
public final class Client {
  public static void main(String[] args) throws Exception {
    String host = "127.0.0.1";
    int port = 9042;
    int n = 5000;
    int c = 64;
    String proto = "V5";
    String coalescer = "default";
    String keyspace = "cqlsniff_lab";
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--host" -> host = args[++i];
        case "--port" -> port = Integer.parseInt(args[++i]);
        case "-n" -> n = Integer.parseInt(args[++i]);
        case "-c" -> c = Integer.parseInt(args[++i]);
        case "--proto" -> proto = "V" + args[++i];
        case "--coalescer" -> coalescer = args[++i];
        case "--keyspace" -> keyspace = args[++i];
        default -> throw new IllegalArgumentException("unknown argument " + args[i]);
      }
    }
    if (!coalescer.equals("default") && !coalescer.equals("passthrough")) {
      throw new IllegalArgumentException("--coalescer must be default or passthrough");
    }

    DriverConfigLoader config =
        DriverConfigLoader.programmaticBuilder()
            .withString(DefaultDriverOption.PROTOCOL_VERSION, proto)
            .withString(DefaultDriverOption.REQUEST_CONSISTENCY, DefaultConsistencyLevel.ONE.name())
            .withDuration(DefaultDriverOption.REQUEST_TIMEOUT, Duration.ofSeconds(20))
            .withInt(DefaultDriverOption.CONNECTION_POOL_LOCAL_SIZE, 1)
            .withInt(DefaultDriverOption.CONNECTION_MAX_REQUESTS, 1024)
            .build();
    boolean passThrough = coalescer.equals("passthrough");
    CqlSessionBuilder builder =
        new CqlSessionBuilder() {
          @Override
          protected DriverContext buildContext(
              DriverConfigLoader loader, ProgrammaticArguments programmaticArguments) {
            if (!passThrough) {
              return super.buildContext(loader, programmaticArguments);
            }
            return new DefaultDriverContext(loader, programmaticArguments) {
              @Override
              protected WriteCoalescer buildWriteCoalescer() {
                return new PassThroughWriteCoalescer(this);
              }
            };
          }
        };
    try (CqlSession session =
        builder
            .withConfigLoader(config)
            .addContactPoint(new InetSocketAddress(host, port))
            .withLocalDatacenter("datacenter1")
            .build()) {
      session.execute(
          "CREATE KEYSPACE IF NOT EXISTS " + keyspace
              + " WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}");
      session.execute(
          "CREATE TABLE IF NOT EXISTS " + keyspace
              + ".kv (k int, c int, v text, PRIMARY KEY (k, c))");
      PreparedStatement ins =
          session.prepare("INSERT INTO " + keyspace + ".kv (k, c, v) VALUES (?, ?, ?)");
      PreparedStatement sel =
          session.prepare("SELECT v FROM " + keyspace + ".kv WHERE k = ? AND c = ?");

      Semaphore inFlight = new Semaphore(c);
      AtomicLong done = new AtomicLong();
      AtomicLong errors = new AtomicLong();
      AtomicReference<String> firstError = new AtomicReference<>();
      int batchAt = n / 2;
      long start = System.nanoTime();
      for (int i = 0; i < n; i++) {
        int k = i % 97;
        Statement<?> stmt;
        if (i == batchAt) {
          BatchStatementBuilder b = BatchStatement.builder(BatchType.UNLOGGED);
          for (int j = 0; j < 5; j++) {
            b.addStatement(ins.bind(k, i * 10 + j, "batch"));
          }
          stmt = b.build();
        } else if (i % 10 < 5) {
          stmt = ins.bind(k, i, "value");
        } else if (i % 10 < 8) {
          stmt = sel.bind(k, i);
        } else {
          stmt =
              SimpleStatement.newInstance(
                  "SELECT k, c, v FROM " + keyspace + ".kv WHERE k = " + k + " AND c = " + i);
        }
        inFlight.acquire();
        session
            .executeAsync(stmt)
            .whenComplete(
                (rs, err) -> {
                  done.incrementAndGet();
                  if (err != null) {
                    errors.incrementAndGet();
                    firstError.compareAndSet(null, err.toString());
                  }
                  inFlight.release();
                });
      }
      inFlight.acquire(c);
      double seconds = (System.nanoTime() - start) / 1e9;
      // Marks the end of the measured phase for lab/run.py (its CPU sampling).
      System.out.println("{\"event\":\"phase_end\"}");
      System.out.flush();
      String version =
          com.datastax.oss.driver.api.core.session.Session.OSS_DRIVER_COORDINATES
              .getVersion()
              .toString();
      int negotiated = session.getContext().getProtocolVersion().getCode();
      String err = firstError.get();
      System.out.printf(
          "{\"driver\":\"java-driver\",\"driver_version\":\"%s\",\"protocol\":%d,\"mode\":\"%s\","
              + "\"compression\":\"none\",\"connections\":1,\"requests\":%d,\"errors\":%d,"
              + "\"first_error\":%s,\"concurrency\":%d,\"duration_s\":%.6f,\"ops_per_s\":%.1f,"
              + "\"local_ports\":[]}%n",
          version, negotiated, passThrough ? "passthrough" : "coalesced", done.get(), errors.get(),
          err == null ? "null" : "\"" + err.replace("\\", "\\\\").replace("\"", "'") + "\"",
          c, seconds, done.get() / seconds);
      if (errors.get() > 0) {
        System.exit(1);
      }
    }
  }
}

// Java client driver (Apache Kafka's kafka-clients, the version pinned in
// test/kafkabed/pom.xml). See ../README.md for the contract; the connection
// settings come from a client.properties file (KAFKA_CLIENT_PROPERTIES),
// written by the test exactly as README.md shows one, so a delegation-token
// login is only a different JAAS line (tokenauth="true").
//
// Compiled by the tests with javac against the Kafka jars and run as
// `java -cp <jars>:<classes> Driver`.

import java.io.FileInputStream;
import java.io.InputStream;
import java.time.Duration;
import java.util.Collections;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.ArrayList;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public final class Driver {
    private static final AtomicBoolean done = new AtomicBoolean();
    private static final Set<String> acked = ConcurrentHashMap.newKeySet();
    private static final Set<String> seen = ConcurrentHashMap.newKeySet();

    public static void main(String[] args) throws Exception {
        String topic = env("KAFKA_TOPIC", null);
        String group = env("KAFKA_GROUP", "group-" + topic);
        int count = Integer.parseInt(env("KAFKA_COUNT", "20"));
        long budgetMs = (long) (Double.parseDouble(env("KAFKA_TIMEOUT_SEC", "60")) * 1000);
        long deadline = System.currentTimeMillis() + budgetMs;

        Properties base = new Properties();
        try (InputStream in = new FileInputStream(env("KAFKA_CLIENT_PROPERTIES", null))) {
            base.load(in);
        }
        Set<String> want = new TreeSet<>();
        for (int i = 0; i < count; i++) {
            want.add("java-" + topic + "-" + i);
        }

        // The client has blocking calls whose timeouts add up past the
        // budget (close, commitSync): a watchdog holds the run to it.
        Thread watchdog = new Thread(() -> {
            try {
                Thread.sleep(budgetMs + 3000);
            } catch (InterruptedException e) {
                return;
            }
            finish(3, "timed out after " + budgetMs / 1000 + "s");
        });
        watchdog.setDaemon(true);
        watchdog.start();

        try {
            Properties pp = new Properties();
            pp.putAll(base);
            pp.put(ProducerConfig.ACKS_CONFIG, "all");
            pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            pp.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, (int) Math.max(30000, deadline - System.currentTimeMillis()));
            pp.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, Math.max(1000, deadline - System.currentTimeMillis()));
            try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
                List<Future<RecordMetadata>> futures = new ArrayList<>();
                for (String v : want) {
                    futures.add(producer.send(new ProducerRecord<>(topic, v), (md, err) -> {
                        if (err != null) {
                            System.err.println("delivery failed: " + err);
                        } else {
                            acked.add(v);
                        }
                    }));
                }
                for (Future<RecordMetadata> f : futures) {
                    f.get(Math.max(1, deadline - System.currentTimeMillis()), TimeUnit.MILLISECONDS);
                }
            }
            if (acked.size() != count) {
                finish(1, "producer: " + acked.size() + " of " + count + " records acknowledged");
            }

            Properties cp = new Properties();
            cp.putAll(base);
            cp.put(ConsumerConfig.GROUP_ID_CONFIG, group);
            cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
            cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
            cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(cp)) {
                consumer.subscribe(Collections.singletonList(topic));
                while (seen.size() < count && System.currentTimeMillis() < deadline) {
                    for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) {
                        if (r.value() != null && want.contains(r.value())) {
                            seen.add(r.value());
                        }
                    }
                }
                if (!seen.isEmpty()) {
                    // Commits the positions of everything polled.
                    consumer.commitSync(Duration.ofMillis(Math.max(5000, deadline - System.currentTimeMillis())));
                }
            }
        } catch (Exception e) {
            finish(1, e.getClass().getSimpleName() + ": " + e.getMessage());
        }
        if (seen.size() < count) {
            finish(1, "consumed " + seen.size() + " of " + count + " values before the " + budgetMs / 1000 + "s budget ran out");
        }
        finish(acked.size() == count ? 0 : 1, null);
    }

    private static String env(String name, String dflt) {
        String v = System.getenv(name);
        if (v == null || v.isEmpty()) {
            if (dflt == null) {
                finish(2, name + " is not set");
            }
            return dflt;
        }
        return v;
    }

    /** Prints the RESULT line once and exits with code. */
    private static void finish(int code, String err) {
        if (!done.compareAndSet(false, true)) {
            try {
                Thread.sleep(Long.MAX_VALUE); // the other caller is exiting
            } catch (InterruptedException e) {
                // exiting anyway
            }
        }
        if (err != null) {
            System.err.println("java driver: " + err);
        }
        System.out.println("RESULT produced=" + acked.size() + " consumed=" + seen.size());
        System.out.flush();
        System.err.flush();
        Runtime.getRuntime().halt(code);
    }
}

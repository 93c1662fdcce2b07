//! The test broker and plain Kafka clients: topics, a producer, a reader.
//!
//! `scripts/test.sh` starts one Tansu broker and names it in
//! `KAFKA_TEST_BROKERS`; each test makes topics of its own. Tests that
//! restart a broker start their own ([`OwnBroker`]). Both store records in
//! SQLite (see `scripts/kafka-broker.sh` for why not in memory).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

/// The shared test broker; `None` (the test is skipped) without one.
pub fn brokers() -> Option<String> {
    crate::helpers::requirements::server("KAFKA_TEST_BROKERS", "the test Kafka broker")
}

/// A topic name no other test uses.
pub fn unique_topic(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// Creates `name` with `partitions` partitions.
pub async fn create_topic(brokers: &str, name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin client");
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics([&topic], &options)
        .await
        .expect("create topics request");
    for result in results {
        result.unwrap_or_else(|(topic, code)| panic!("creating {topic}: {code}"));
    }
}

/// Creates an events topic (3 partitions) and its dead-letter topic.
pub async fn create_topics(brokers: &str) -> (String, String) {
    let topic = unique_topic("events");
    let dead_letters = format!("{topic}_dlq");
    create_topic(brokers, &topic, 3).await;
    create_topic(brokers, &dead_letters, 1).await;
    (topic, dead_letters)
}

/// A plain producer, as any service that already publishes events would use.
pub fn producer(brokers: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000")
        .create()
        .expect("producer")
}

/// Produces `values` to `topic` (key = index modulo 7), waiting for every acknowledgement.
pub async fn produce(producer: &FutureProducer, topic: &str, values: &[Vec<u8>]) {
    produce_with_header(producer, topic, values, None).await;
}

/// Like [`produce`], with an optional header on every record.
pub async fn produce_with_header(
    producer: &FutureProducer,
    topic: &str,
    values: &[Vec<u8>],
    header: Option<(&str, &str)>,
) {
    let keys: Vec<String> = (0..values.len()).map(|i| format!("k{}", i % 7)).collect();
    let sends = values.iter().zip(&keys).map(|(value, key)| {
        let mut record = FutureRecord::to(topic)
            .key(key.as_str())
            .payload(value.as_slice());
        if let Some((name, content)) = header {
            record = record.headers(OwnedHeaders::new().insert(Header {
                key: name,
                value: Some(content),
            }));
        }
        producer.send(record, Timeout::After(Duration::from_secs(30)))
    });
    for result in futures::future::join_all(sends).await {
        result.expect("record acknowledged");
    }
}

/// Produces one record to one partition, waiting for its acknowledgement.
pub async fn produce_to_partition(
    producer: &FutureProducer,
    topic: &str,
    partition: i32,
    value: &[u8],
) {
    let record = FutureRecord::<str, [u8]>::to(topic)
        .partition(partition)
        .payload(value);
    producer
        .send(record, Timeout::After(Duration::from_secs(30)))
        .await
        .expect("record acknowledged");
}

/// Reads every partition of `topic` from the start, without a group, until
/// `count` records arrived (or the timeout passed).
pub async fn read_topic(
    brokers: &str,
    topic: &str,
    count: usize,
    timeout: Duration,
) -> Vec<OwnedMessage> {
    let (brokers, topic) = (brokers.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || read_topic_blocking(&brokers, &topic, count, timeout))
        .await
        .expect("reader thread")
}

fn read_topic_blocking(
    brokers: &str,
    topic: &str,
    count: usize,
    timeout: Duration,
) -> Vec<OwnedMessage> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique_topic("reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("reader");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let mut assignment = TopicPartitionList::new();
    for partition in metadata.topics()[0].partitions() {
        assignment
            .add_partition_offset(topic, partition.id(), Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).expect("assign");
    let deadline = std::time::Instant::now() + timeout;
    let mut messages = Vec::new();
    while messages.len() < count && std::time::Instant::now() < deadline {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
            messages.push(message.detach());
        }
    }
    messages
}

/// The text of a record's header.
pub fn header(message: &OwnedMessage, name: &str) -> Option<String> {
    let headers = message.headers()?;
    headers
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn tansu() -> Option<PathBuf> {
    let on_path = Command::new("sh")
        .args(["-c", "command -v tansu"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let in_cargo = || {
        std::env::var_os("HOME")
            .map(|home| PathBuf::from(home).join(".cargo/bin/tansu"))
            .filter(|path| path.is_file())
    };
    let found = on_path.or_else(in_cargo);
    if found.is_none() {
        crate::helpers::requirements::missing("the Kafka-protocol broker tansu");
    }
    found
}

/// A broker of the test's own, storing in SQLite so that it keeps its
/// records across a restart; killed when dropped.
pub struct OwnBroker {
    pub port: u16,
    dir: tempfile::TempDir,
    program: PathBuf,
    child: Option<Child>,
}

impl OwnBroker {
    /// Starts a broker; `None` (the test is skipped) without tansu.
    pub fn start() -> Option<Self> {
        let program = tansu()?;
        let mut broker = OwnBroker {
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
            program,
            child: None,
        };
        broker.launch();
        Some(broker)
    }

    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn launch(&mut self) {
        let listener = format!("tcp://127.0.0.1:{}", self.port);
        let child = Command::new(&self.program)
            .current_dir(self.dir.path())
            .args(["broker", "--listener-url", &listener])
            .args(["--advertised-listener-url", &listener])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tansu starts (installed by scripts/setup-dev.sh)");
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the test broker did not listen on {}", self.port);
    }

    /// Kills the broker (SIGKILL) and waits for it to die.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and storage.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        self.kill();
    }
}

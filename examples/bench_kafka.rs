//! Kafka side of the Kafka benchmark (`scripts/bench-kafka.sh`).
//!
//! ```text
//! bench_kafka produce --brokers 127.0.0.1:9092 --topic events --events 500000
//! bench_kafka count   --brokers 127.0.0.1:9092 --topic events --events 500000
//! ```
//!
//! `produce` creates the topic (3 partitions) and its `_dlq` topic, and fills it with realistic
//! Segment events (one per record, unique `messageId`s). `count` is the
//! ceiling the service is compared with: a bare librdkafka consumer in a
//! fresh group that only counts records until it has seen them all.

#[path = "support/sample_events.rs"]
mod sample_events;

use std::time::{Duration, Instant};

use futures::StreamExt;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::ClientConfig;

struct Options {
    command: String,
    brokers: String,
    topic: String,
    events: usize,
}

fn parse_options() -> Options {
    let mut args = std::env::args().skip(1);
    let command = args.next().expect("produce or count");
    let mut options = Options {
        command,
        brokers: "127.0.0.1:9092".into(),
        topic: "events".into(),
        events: 500_000,
    };
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--brokers" => options.brokers = value,
            "--topic" => options.topic = value,
            "--events" => options.events = value.parse().expect("--events N"),
            other => panic!("unknown flag {other}"),
        }
    }
    options
}

async fn produce(options: &Options) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &options.brokers)
        .create()
        .expect("admin client");
    let dead_letters = format!("{}_dlq", options.topic);
    let topics = [
        NewTopic::new(&options.topic, 3, TopicReplication::Fixed(1)),
        NewTopic::new(&dead_letters, 1, TopicReplication::Fixed(1)),
    ];
    let created = admin
        .create_topics(&topics, &AdminOptions::new())
        .await
        .expect("create topic");
    for result in created {
        if let Err((name, code)) = result {
            eprintln!("topic {name}: {code}");
        }
    }
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &options.brokers)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "20")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "200000")
        .create()
        .expect("producer");
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let started = Instant::now();
    let mut sent = 0;
    while sent < options.events {
        let chunk = (options.events - sent).min(20_000);
        let values: Vec<(String, String)> = (sent..sent + chunk)
            .map(|i| {
                let mut value = String::with_capacity(700);
                sample_events::write_event(
                    &mut value,
                    0,
                    i as u64,
                    &now,
                    sample_events::MessageIds::Sequential,
                );
                (format!("k{}", i % 1000), value)
            })
            .collect();
        let deliveries = values.iter().map(|(key, value)| {
            producer.send(
                FutureRecord::to(&options.topic)
                    .key(key.as_str())
                    .payload(value.as_str()),
                Timeout::After(Duration::from_secs(60)),
            )
        });
        for delivery in futures::future::join_all(deliveries).await {
            delivery.expect("record acknowledged");
        }
        sent += chunk;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "produced={} seconds={seconds:.2} records_per_second={:.0}",
        options.events,
        options.events as f64 / seconds
    );
}

async fn count(options: &Options) {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &options.brokers)
        .set(
            "group.id",
            format!("count-{}", uuid::Uuid::new_v4().simple()),
        )
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer.subscribe(&[&options.topic]).expect("subscribe");
    let mut stream = consumer.stream();
    let mut seen = 0;
    let mut bytes = 0;
    let mut first = None;
    while seen < options.events {
        let message = stream.next().await.expect("stream").expect("record");
        first.get_or_insert_with(Instant::now);
        bytes += rdkafka::Message::payload(&message).map_or(0, <[u8]>::len);
        seen += 1;
    }
    let seconds = first.map_or(0.0, |f| f.elapsed().as_secs_f64());
    println!(
        "counted={seen} seconds={seconds:.2} records_per_second={:.0} mb={:.0}",
        seen as f64 / seconds,
        bytes as f64 / 1e6
    );
}

#[tokio::main]
async fn main() {
    let options = parse_options();
    match options.command.as_str() {
        "produce" => produce(&options).await,
        "count" => count(&options).await,
        other => panic!("unknown command {other}: produce or count"),
    }
}

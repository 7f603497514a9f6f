//! Benchmarks for the SPEC §15 targets that live in `cosmic-space`: point parsing
//! (≥ 2M points/s), wire encode+decode of a small Ping (≤ 1 µs), and large inputs (§16: a 1 MB
//! script, a 40,000-name property list), each beside a baseline measured in the same run.
//!
//! `cargo bench -p cosmic-space --bench space -- --warm-up-time 1 --measurement-time 3`
#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use cosmic_space::{Method, Ping, Point, PropertyChanges, Script, Surface, Wave, wire};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// A mix of the points a star parses all day.
const POINTS: [&str; 6] = [
    "localhost:app:users:scott",
    "repo:hello:1.0.0:/wasm/hello.wasm",
    "GLOBAL::executor",
    "localhost",
    "my-domain.com:app:db:orders",
    "hyperspace:users:hyperuser",
];

fn points(c: &mut Criterion) {
    let mut group = c.benchmark_group("point");
    group.throughput(Throughput::Elements(POINTS.len() as u64));
    group.bench_function("parse", |b| {
        b.iter(|| {
            for text in POINTS {
                black_box(black_box(text).parse::<Point>().unwrap());
            }
        })
    });
    group.bench_function("baseline: String::from", |b| {
        b.iter(|| {
            for text in POINTS {
                black_box(String::from(black_box(text)));
            }
        })
    });
    group.finish();
}

fn small_ping() -> Wave {
    let from: Surface = "localhost:app:client".parse().unwrap();
    let to: Surface = "localhost:app:hello".parse().unwrap();
    Ping::new(from, to, Method::ext("Hello").unwrap(), "world").into()
}

fn ping_wire(c: &mut Criterion) {
    let ping = small_ping();
    let frame = wire::encode(&ping).unwrap();
    let mut group = c.benchmark_group("wire");
    group.throughput(Throughput::Elements(1));
    group.bench_function("small ping encode+decode", |b| {
        b.iter(|| {
            let frame = wire::encode(black_box(&ping)).unwrap();
            black_box(wire::decode::<Wave>(&frame).unwrap())
        })
    });
    group.bench_function("small ping encode", |b| {
        b.iter(|| black_box(wire::encode(black_box(&ping)).unwrap()))
    });
    group.bench_function("small ping decode", |b| {
        b.iter(|| black_box(wire::decode::<Wave>(black_box(&frame)).unwrap()))
    });
    group.bench_function("baseline: clone", |b| {
        b.iter(|| black_box(black_box(&ping).clone()))
    });
    group.finish();
}

/// Large inputs parse in linear time (SPEC §16): a 1 MB script and a 40,000-name property
/// list, beside splitting the same text at its separators.
fn large_inputs(c: &mut Criterion) {
    let script = "read a;\n".repeat(125_000);
    let names: Vec<String> = (0..40_000).map(|i| format!("+p{i}=x")).collect();
    let properties = format!("{{ {} }}", names.join(", "));
    let mut group = c.benchmark_group("large");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(script.len() as u64));
    group.bench_function("1 MB script parse", |b| {
        b.iter(|| black_box(black_box(script.as_str()).parse::<Script>().unwrap()))
    });
    group.bench_function("baseline: 1 MB script split at ';'", |b| {
        b.iter(|| black_box(black_box(script.as_str()).split(';').count()))
    });
    group.throughput(Throughput::Bytes(properties.len() as u64));
    group.bench_function("40k property changes parse", |b| {
        b.iter(|| {
            black_box(
                black_box(properties.as_str())
                    .parse::<PropertyChanges>()
                    .unwrap(),
            )
        })
    });
    group.bench_function("baseline: 40k property changes split at ','", |b| {
        b.iter(|| black_box(black_box(properties.as_str()).split(',').count()))
    });
    group.finish();
}

criterion_group!(benches, points, ping_wire, large_inputs);
criterion_main!(benches);

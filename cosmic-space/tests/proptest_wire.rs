//! Property tests for the wire codec (SPEC §5.4, §16): no input panics the decoder, and every
//! generated value survives a round trip. Also the particle status grammar, which rides in
//! frames and CLI output.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use cosmic_space::{
    Agent, BounceBacks, Details, Echo, Errors, HttpMethod, HttpRequest, HttpResponse, Json, Method,
    Ping, Point, Priority, Properties, Property, RawCommand, Recipients, ReflectedCore, Ripple,
    Signal, Status, StatusCode, Stub, Substance, Surface, Token, WaitTime, Wave, WaveId, Wire,
    WireError, wire,
};
use proptest::prelude::*;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn small_ping() -> Ping {
    Ping::new(
        "localhost:app:client".parse::<Surface>().unwrap(),
        "localhost:app:hello@Core+Topic<Cli>"
            .parse::<Surface>()
            .unwrap(),
        Method::ext("Hello").unwrap(),
        "world",
    )
    .with_id(WaveId::from_random_bytes([3; 16]))
    .with_path("/greet/scott")
    .with_header("Accept", "text/plain")
    .with_agent(Agent::Point("localhost:users:scott".parse().unwrap()))
}

/// Valid frames to mutate: one of each wave family and a few substances (built once).
fn seed_frames() -> &'static [Vec<u8>] {
    static FRAMES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    FRAMES.get_or_init(build_seed_frames)
}

fn build_seed_frames() -> Vec<Vec<u8>> {
    let ping = small_ping();
    let ripple = Ripple::new(
        ping.from.clone(),
        vec![
            ping.to.clone(),
            "GLOBAL::executor".parse::<Surface>().unwrap(),
        ],
        "Cmd<Bounce>".parse().unwrap(),
        Substance::List(vec![Substance::Int(1), Substance::from("two")]),
    )
    .with_bounce_backs(BounceBacks::Count(2));
    let waves: Vec<Wave> = vec![
        ping.clone().into(),
        ping.pong(ReflectedCore::error(StatusCode::CONFLICT, "exists"))
            .into(),
        ripple.clone().into(),
        ripple
            .echo(
                ping.to.clone(),
                ReflectedCore::ok(Substance::json(&[1, 2]).unwrap()),
            )
            .into(),
    ];
    let mut frames: Vec<Vec<u8>> = waves.iter().map(|w| wire::encode(w).unwrap()).collect();
    frames.push(
        wire::encode(&Substance::HttpRequest(
            HttpRequest::new(HttpMethod::Post, "/a?b=c").with_body("{}"),
        ))
        .unwrap(),
    );
    frames.push(wire::encode(&Substance::from(Wave::from(ping))).unwrap());
    frames
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(i, mask)| Mutation::Flip(i, mask)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

/// `len` pseudo-random bytes from `seed` (xorshift): far cheaper than a proptest vector of
/// bytes in debug builds, which matters at tens of thousands of cases.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

fn mutate(mut frame: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = frame.len();
        match *m {
            Mutation::Flip(i, mask) if len > 0 => frame[i % len] ^= mask,
            Mutation::Insert(i, b) => frame.insert(i % (len + 1), b),
            Mutation::Delete(i) if len > 0 => {
                frame.remove(i % len);
            }
            Mutation::Truncate(i) => frame.truncate(i % (len + 1)),
            _ => {}
        }
    }
    frame
}

/// Decodes as every top-level type a peer may send; only checks that nothing panics.
fn decode_everything(frame: &[u8]) {
    let _ = wire::decode::<Wave>(frame);
    let _ = wire::decode::<Substance>(frame);
    let _ = wire::decode::<ReflectedCore>(frame);
    let _ = wire::decode::<Details>(frame);
}

// No-panic cases in total: 25,000 + 10,000 random frames, 20,000 mutated valid frames, each
// decoded as four types.
proptest! {
    #![proptest_config(config(25_000))]

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(seed in any::<u64>(), len in 0..200usize) {
        decode_everything(&noise(seed, len));
    }
}

proptest! {
    #![proptest_config(config(10_000))]

    /// Frames that start like a wave or a substance get much further into the decoder than
    /// uniformly random bytes.
    #[test]
    fn arbitrary_bytes_after_a_valid_tag_never_panic(
        tags in prop::collection::vec(0..20u8, 1..4),
        seed in any::<u64>(),
        len in 0..200usize,
    ) {
        let mut frame = tags;
        frame.extend(noise(seed, len));
        decode_everything(&frame);
    }
}

proptest! {
    #![proptest_config(config(20_000))]

    #[test]
    fn mutated_valid_frames_never_panic(
        seed in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..5),
    ) {
        let frame = mutate(seed.get(seed_frames()).clone(), &mutations);
        decode_everything(&frame);
        // Whatever decodes re-encodes and decodes to the same value.
        if let Ok(wave) = wire::decode::<Wave>(&frame) {
            let again = wire::encode(&wave).unwrap();
            prop_assert_eq!(wire::decode::<Wave>(&again).unwrap(), wave);
        }
    }
}

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,8}"
}

fn point() -> impl Strategy<Value = Point> {
    prop_oneof![
        prop::collection::vec(name(), 0..4).prop_map(|bases| {
            let mut point = Point::space("localhost").unwrap();
            for base in bases {
                point = point.push_base(&base).unwrap();
            }
            point
        }),
        prop::sample::select(vec![
            "repo:hello:1.0.0:/wasm/hello.wasm",
            "GLOBAL::executor",
            "<<STAR::central:nexus[0]>>::star",
            "ROOT",
            "hyperspace:users:hyperuser",
        ])
        .prop_map(|text| text.parse::<Point>().unwrap()),
    ]
}

fn surface() -> impl Strategy<Value = Surface> {
    (
        point(),
        prop::sample::select(vec!["Core", "Shell", "Field", "Guest"]),
    )
        .prop_map(|(point, layer)| Surface::new(point, layer.parse().unwrap()))
}

fn status() -> impl Strategy<Value = Status> {
    prop_oneof![
        Just(Status::Unknown),
        Just(Status::Pending),
        Just(Status::Init),
        Just(Status::Ready),
        any::<String>().prop_map(Status::Panic),
        "[ -~]{0,20}".prop_map(Status::Fatal),
    ]
}

fn stub() -> impl Strategy<Value = Stub> {
    (
        point(),
        prop::sample::select(vec!["App", "Mechtron", "Artifact<Wasm>", "User", "Space"]),
        status(),
    )
        .prop_map(|(point, kind, status)| Stub {
            point,
            kind: kind.parse().unwrap(),
            status,
        })
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..32)
}

fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(("[A-Za-z-]{1,10}", "[ -~]{0,10}"), 0..3)
}

fn leaf() -> impl Strategy<Value = Substance> {
    prop_oneof![
        Just(Substance::Empty),
        any::<String>().prop_map(Substance::Text),
        bytes().prop_map(Substance::Bin),
        any::<bool>().prop_map(Substance::Bool),
        any::<i64>().prop_map(Substance::Int),
        prop::collection::btree_map(name(), any::<i32>(), 0..4)
            .prop_map(|map| Substance::Json(Json::from_value(&map).unwrap())),
        point().prop_map(Substance::Point),
        surface().prop_map(Substance::Surface),
        stub().prop_map(Substance::from),
        (
            stub(),
            prop::collection::btree_map(name(), ("[ -~]{0,10}", any::<bool>()), 0..3)
        )
            .prop_map(|(stub, props)| {
                let properties: Properties = props
                    .into_iter()
                    .map(|(n, (value, locked))| (n, Property { value, locked }))
                    .collect();
                Substance::from(Details { stub, properties })
            }),
        status().prop_map(Substance::Status),
        (
            any::<String>(),
            prop::collection::vec((name(), bytes()), 0..3)
        )
            .prop_map(|(line, transfers)| {
                let mut cmd = RawCommand::new(line);
                for (name, bytes) in transfers {
                    cmd = cmd.with_transfer(name, bytes);
                }
                Substance::RawCommand(cmd)
            }),
        prop::collection::vec(any::<String>(), 0..3)
            .prop_map(|messages| Substance::Errors(Errors::from(messages))),
        any::<String>().prop_map(|secret| Substance::Token(Token::new(secret))),
        (
            headers(),
            bytes(),
            "/[a-z/]{0,10}",
            prop::option::of("[a-z=&]{0,10}")
        )
            .prop_map(|(headers, body, path, query)| {
                let mut req = HttpRequest::new(HttpMethod::Put, &path).with_body(body);
                req.query = query;
                for (n, v) in headers {
                    req.headers.append(n, v);
                }
                Substance::HttpRequest(req)
            }),
        (100..=599u16, headers(), bytes()).prop_map(|(code, headers, body)| {
            let mut res = HttpResponse::new(StatusCode::new(code).unwrap()).with_body(body);
            for (n, v) in headers {
                res.headers.append(n, v);
            }
            Substance::HttpResponse(res)
        }),
    ]
}

fn wave_around(body: Substance) -> impl Strategy<Value = Wave> {
    (
        surface(),
        surface(),
        prop::sample::select(vec!["Ext<Hello>", "Http<Get>", "Cmd<Read>", "Hyp<Assign>"]),
        any::<[u8; 16]>(),
        0..5u8,
        any::<u64>(),
        any::<u16>(),
    )
        .prop_map(move |(from, to, method, id, which, wait, hops)| {
            let method: Method = method.parse().unwrap();
            let id = WaveId::from_bytes(id);
            let body = body.clone();
            let mut ping = Ping::new(from.clone(), to.clone(), method.clone(), body.clone())
                .with_id(id)
                .with_wait(WaitTime::from_millis(wait))
                .with_priority(Priority::Low);
            ping.hops = hops;
            match which {
                0 => ping.into(),
                1 => ping.pong(ReflectedCore::ok(body)).into(),
                2 => Signal::new(from, to, method, body).with_id(id).into(),
                3 => Ripple::new(from, Recipients::Watchers(to.point), method, body)
                    .with_bounce_backs(BounceBacks::Timer(WaitTime::from_millis(wait)))
                    .with_id(id)
                    .into(),
                _ => {
                    let ripple = Ripple::new(from, vec![to.clone()], method, ());
                    let echo: Echo = ripple.echo(to, ReflectedCore::ok(body));
                    echo.into()
                }
            }
        })
}

fn substance() -> impl Strategy<Value = Substance> {
    leaf().prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Substance::List),
            prop::collection::btree_map(any::<String>(), inner.clone(), 0..4)
                .prop_map(Substance::Map),
            inner.prop_flat_map(wave_around).prop_map(Substance::from),
        ]
    })
}

proptest! {
    #![proptest_config(config(1_000))]

    #[test]
    fn generated_substances_round_trip(substance in substance()) {
        let frame = wire::encode(&substance).unwrap();
        prop_assert_eq!(wire::decode::<Substance>(&frame).unwrap(), substance);
    }

    #[test]
    fn generated_waves_round_trip(wave in substance().prop_flat_map(wave_around)) {
        let frame = wire::encode(&wave).unwrap();
        prop_assert_eq!(wire::decode::<Wave>(&frame).unwrap(), wave);
    }

    /// Every proper prefix of a valid frame is refused, never misread.
    #[test]
    fn truncated_frames_are_errors(substance in substance(), cut in any::<prop::sample::Index>()) {
        let frame = wire::encode(&substance).unwrap();
        let cut = cut.index(frame.len());
        prop_assert!(wire::decode::<Substance>(&frame[..cut]).is_err());
    }

    /// A frame over the limit is refused when encoding exactly as when decoding.
    #[test]
    fn limits_agree_both_ways(substance in substance(), limit in 0..256usize) {
        let frame = wire::encode(&substance).unwrap();
        let wire = Wire::new(limit);
        if frame.len() > limit {
            let too_large = WireError::FrameTooLarge { size: frame.len(), limit };
            prop_assert_eq!(wire.encode(&substance), Err(too_large.clone()));
            prop_assert_eq!(wire.decode::<Substance>(&frame), Err(too_large));
        } else {
            prop_assert_eq!(wire.encode(&substance).unwrap(), frame.clone());
            prop_assert_eq!(wire.decode::<Substance>(&frame).unwrap(), substance);
        }
    }

    #[test]
    fn statuses_round_trip_through_text(status in status()) {
        let text = status.to_string();
        prop_assert_eq!(text.parse::<Status>().unwrap(), status);
    }
}

proptest! {
    #![proptest_config(config(5_000))]

    #[test]
    fn arbitrary_text_never_panics_the_status_parser(text in any::<String>()) {
        let _ = text.parse::<Status>();
    }

    #[test]
    fn near_valid_statuses_never_panic(
        base in prop::sample::select(vec!["Ready", "Panic(out of fuel)", r"Fatal(a \) b)"]),
        at in any::<prop::sample::Index>(),
        insert in prop::option::of(prop::sample::select(vec!['(', ')', '\\', 'é', ' '])),
    ) {
        let mut chars: Vec<char> = base.chars().collect();
        let i = at.index(chars.len() + 1);
        match insert {
            Some(c) => chars.insert(i, c),
            None if i < chars.len() => {
                chars.remove(i);
            }
            None => {}
        }
        let text: String = chars.into_iter().collect();
        if let Ok(status) = text.parse::<Status>() {
            prop_assert_eq!(status.to_string().parse::<Status>().unwrap(), status);
        }
    }
}

#[test]
fn map_keys_and_headers_survive() {
    let mut map = BTreeMap::new();
    map.insert("Ünïcode".to_string(), Substance::from(()));
    let substance = Substance::Map(map);
    let frame = wire::encode(&substance).unwrap();
    assert_eq!(wire::decode::<Substance>(&frame).unwrap(), substance);
}

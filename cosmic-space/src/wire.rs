//! The wire format (SPEC §5.4): how waves and substances cross a process or guest boundary as
//! frames. This is the only module that knows the byte format.
//!
//! A frame is the value encoded with bincode 2's standard configuration (little-endian,
//! variable-length integers), nothing before or after it. Decoding refuses frames over the
//! size limit, trailing bytes and malformed input with a [`WireError`] — it never panics,
//! and a length prefix that lies cannot make it allocate more than a small multiple of the
//! frame's own size.
//!
//! On a byte stream (the control connection, SPEC §13) each frame is preceded by its length as
//! a 4-byte big-endian prefix: [`Wire::encode_framed`] writes both, [`Wire::frame_len`] reads
//! the prefix and refuses a length over the limit before anything is allocated.
//!
//! ```
//! use cosmic_space::{wire, Method, Ping, Surface, Wave};
//!
//! let from: Surface = "localhost:client".parse()?;
//! let to: Surface = "localhost:hello".parse()?;
//! let wave = Wave::from(Ping::new(from, to, Method::ext("Hello")?, "world"));
//!
//! let frame = wire::encode(&wave)?;
//! assert_eq!(wire::decode::<Wave>(&frame)?, wave);
//! assert!(wire::decode::<Wave>(&frame[..frame.len() - 1]).is_err());
//! # Ok::<(), cosmic_space::Error>(())
//! ```

use bincode::config::{self, Config};
use bincode::enc::write::Writer;
use bincode::error::{DecodeError, EncodeError};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why a frame could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The frame is larger than the limit (when decoding), or would be (when encoding).
    #[error("frame of {size} bytes exceeds the limit of {limit} bytes")]
    FrameTooLarge {
        /// The frame's size in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The frame holds a complete value followed by more bytes.
    #[error("{extra} unexpected bytes after the end of the frame's value")]
    TrailingBytes {
        /// How many bytes were left over.
        extra: usize,
    },
    /// The bytes are not an encoding of the type asked for.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// The value could not be encoded (e.g. substances nested too deeply).
    #[error("cannot encode: {0}")]
    Encode(String),
}

/// The frame codec with its size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Wire {
    max_frame: usize,
}

impl Wire {
    /// The default frame limit: 16 MiB.
    pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;

    /// The size of the length prefix in front of a frame on a stream ([`Wire::encode_framed`]).
    pub const PREFIX_LEN: usize = 4;

    /// The largest limit a `Wire` takes: 1 GiB (128 MiB where pointers are 32 bits wide).
    #[cfg(target_pointer_width = "64")]
    pub const CEILING: usize = 1 << 30;
    /// The largest limit a `Wire` takes: 1 GiB (128 MiB where pointers are 32 bits wide).
    #[cfg(not(target_pointer_width = "64"))]
    pub const CEILING: usize = 1 << 27;

    /// A codec refusing frames over `max_frame` bytes (at most [`Wire::CEILING`]).
    pub const fn new(max_frame: usize) -> Wire {
        Wire {
            max_frame: if max_frame < Wire::CEILING {
                max_frame
            } else {
                Wire::CEILING
            },
        }
    }

    /// The frame limit in bytes.
    pub const fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// `value` as a frame, unless the frame would exceed the limit.
    pub fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, WireError> {
        let (frame, _) = self.encode_onto(Vec::with_capacity(self.max_frame.min(256)), value)?;
        Ok(frame)
    }

    /// `value` as a frame behind a 4-byte length prefix (big-endian `u32`), for streams such as
    /// the control connection (SPEC §13) where frames follow each other.
    ///
    /// ```
    /// use cosmic_space::{Substance, Wire};
    ///
    /// let wire = Wire::default();
    /// let framed = wire.encode_framed(&Substance::from("hi"))?;
    /// let len = wire.frame_len([framed[0], framed[1], framed[2], framed[3]])?;
    /// assert_eq!(len, framed.len() - Wire::PREFIX_LEN);
    /// assert_eq!(wire.decode::<Substance>(&framed[Wire::PREFIX_LEN..])?, Substance::from("hi"));
    /// # Ok::<(), cosmic_space::WireError>(())
    /// ```
    pub fn encode_framed<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, WireError> {
        let mut prefix = Vec::with_capacity(self.max_frame.min(256) + Wire::PREFIX_LEN);
        prefix.extend_from_slice(&[0; Wire::PREFIX_LEN]);
        let (mut frame, size) = self.encode_onto(prefix, value)?;
        // The ceiling (1 GiB) keeps every frame's length within a u32.
        let len = u32::try_from(size).map_err(|_| WireError::FrameTooLarge {
            size,
            limit: self.max_frame,
        })?;
        frame[..Wire::PREFIX_LEN].copy_from_slice(&len.to_be_bytes());
        Ok(frame)
    }

    /// `value`'s frame appended to `bytes` (empty, or a prefix), unless the frame would exceed
    /// the limit; with the frame's size.
    #[inline]
    fn encode_onto<T: Serialize + ?Sized>(
        &self,
        bytes: Vec<u8>,
        value: &T,
    ) -> Result<(Vec<u8>, usize), WireError> {
        let mut writer = FrameWriter {
            frame: bytes,
            size: 0,
            limit: self.max_frame,
        };
        bincode::serde::encode_into_writer(value, &mut writer, config::standard())
            .map_err(encode_error)?;
        if writer.size > self.max_frame {
            return Err(WireError::FrameTooLarge {
                size: writer.size,
                limit: self.max_frame,
            });
        }
        Ok((writer.frame, writer.size))
    }

    /// The length of the frame that follows a 4-byte `prefix` written by
    /// [`Wire::encode_framed`], refused if over the limit (before anything is read or
    /// allocated for it).
    pub fn frame_len(&self, prefix: [u8; 4]) -> Result<usize, WireError> {
        let len = u32::from_be_bytes(prefix);
        match usize::try_from(len) {
            Ok(len) if len <= self.max_frame => Ok(len),
            _ => Err(WireError::FrameTooLarge {
                size: usize::try_from(len).unwrap_or(usize::MAX),
                limit: self.max_frame,
            }),
        }
    }

    /// The value of type `T` that `frame` holds, exactly.
    #[inline]
    pub fn decode<T: DeserializeOwned>(&self, frame: &[u8]) -> Result<T, WireError> {
        if frame.len() > self.max_frame {
            return Err(WireError::FrameTooLarge {
                size: frame.len(),
                limit: self.max_frame,
            });
        }
        let (value, read) = decode_bounded::<T>(frame).map_err(decode_error)?;
        match frame.len().checked_sub(read) {
            Some(0) => Ok(value),
            Some(extra) => Err(WireError::TrailingBytes { extra }),
            None => Err(WireError::Malformed(
                "the decoder read past the frame".to_string(),
            )),
        }
    }
}

impl Default for Wire {
    fn default() -> Self {
        Wire::new(Wire::DEFAULT_MAX_FRAME)
    }
}

/// The 64-bit FNV-1a hash of `bytes`: the same on every platform, process and version (unlike
/// `std`'s hasher), so machines of one cosmos agree on it — placement weights, etags. A hash
/// that tells values apart, not a signature.
pub fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// `bytes` in standard base64 with padding (RFC 4648 §4): how bytes travel in text (JSON
/// bodies, event streams).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                text.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                text.push('=');
            }
        }
    }
    text
}

/// `value` as a frame with the default limit ([`Wire::DEFAULT_MAX_FRAME`]).
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, WireError> {
    Wire::default().encode(value)
}

/// The value of type `T` that `frame` holds, with the default limit.
#[inline]
pub fn decode<T: DeserializeOwned>(frame: &[u8]) -> Result<T, WireError> {
    Wire::default().decode(frame)
}

/// Packs a guest pointer and length into the `u64` the guest ABI returns (SPEC §11.3):
/// `(ptr << 32) | len`.
pub const fn pack_ptr_len(ptr: u32, len: u32) -> u64 {
    ((ptr as u64) << 32) | len as u64
}

/// Splits a `u64` from the guest ABI into its pointer and length.
pub const fn unpack_ptr_len(packed: u64) -> (u32, u32) {
    ((packed >> 32) as u32, packed as u32)
}

/// Collects the frame while it stays under the limit and counts its full size, so an oversize
/// value is refused with its size but without holding it in memory.
struct FrameWriter {
    frame: Vec<u8>,
    size: usize,
    limit: usize,
}

impl Writer for FrameWriter {
    #[inline(always)]
    fn write(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        self.size = self.size.saturating_add(bytes.len());
        if self.size <= self.limit {
            // Most writes are one byte (tags, small varints): push it rather than call memcpy.
            match bytes {
                [byte] => self.frame.push(*byte),
                _ => self.frame.extend_from_slice(bytes),
            }
        } else if !self.frame.is_empty() {
            self.frame = Vec::new();
        }
        Ok(())
    }
}

/// Decodes with bincode's read limit set to a bucket above 16 times the frame's length.
///
/// bincode claims the full width of every integer it reads (up to 16 bytes for one that
/// takes one byte as a varint), and claims a string's or byte buffer's length before
/// allocating it; a valid frame therefore claims at most 16 × its length, and a lying
/// length prefix is refused before it allocates more than the bucket.
#[inline]
fn decode_bounded<T: DeserializeOwned>(frame: &[u8]) -> Result<(T, usize), DecodeError> {
    const KIB: usize = 1 << 10;
    const MIB: usize = 1 << 20;
    let standard = config::standard();
    match frame.len() {
        len if len <= 64 * KIB => decode_with(frame, standard.with_limit::<{ MIB }>()),
        len if len <= MIB => decode_with(frame, standard.with_limit::<{ 16 * MIB }>()),
        len if len <= 16 * MIB => decode_with(frame, standard.with_limit::<{ 256 * MIB }>()),
        #[cfg(target_pointer_width = "64")]
        len if len <= 128 * MIB => decode_with(frame, standard.with_limit::<{ 2048 * MIB }>()),
        #[cfg(target_pointer_width = "64")]
        _ => decode_with(frame, standard.with_limit::<{ 16384 * MIB }>()),
        // 32-bit targets: frames are at most 128 MiB and the bucket stops short of 2 GiB.
        #[cfg(not(target_pointer_width = "64"))]
        _ => decode_with(frame, standard.with_limit::<{ 2047 * MIB }>()),
    }
}

#[inline]
fn decode_with<T: DeserializeOwned, C: Config>(
    frame: &[u8],
    config: C,
) -> Result<(T, usize), DecodeError> {
    bincode::serde::decode_from_slice(frame, config)
}

fn decode_error(error: DecodeError) -> WireError {
    match error {
        DecodeError::LimitExceeded => {
            WireError::Malformed("a length in the frame claims more than it holds".to_string())
        }
        other => WireError::Malformed(other.to_string()),
    }
}

fn encode_error(error: EncodeError) -> WireError {
    WireError::Encode(error.to_string())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::access::Agent;
    use crate::kind::{ArtifactSubKind, Kind};
    use crate::method::{HttpMethod, Method};
    use crate::particle::{Details, Properties, Property, Status, Stub};
    use crate::point::Point;
    use crate::substance::{Errors, HttpRequest, HttpResponse, RawCommand, Substance, Token};
    use crate::surface::Surface;
    use crate::wave::{
        BounceBacks, DirectedWave, Handling, Ping, Priority, Recipients, ReflectedCore,
        ReflectedWave, Ripple, Signal, StatusCode, WaitTime, Wave, WaveId,
    };

    fn s(text: &str) -> Surface {
        text.parse().unwrap()
    }

    fn p(text: &str) -> Point {
        text.parse().unwrap()
    }

    fn ping() -> Ping {
        Ping::new(
            s("localhost:app:client"),
            s("localhost:app:hello@Core+Topic<Cli>"),
            Method::ext("Hello").unwrap(),
            "world",
        )
        .with_id(WaveId::from_random_bytes([5; 16]))
        .with_header("X-Trace", "1")
        .with_agent(Agent::Point(p("localhost:users:scott")))
        .with_handling(Handling {
            priority: Priority::High,
            wait: WaitTime::from_millis(1500),
        })
    }

    fn every_wave() -> Vec<Wave> {
        let ping = ping();
        let ripple = Ripple::new(
            s("localhost:src"),
            Recipients::Multi(vec![s("localhost:a"), s("GLOBAL::executor@Shell")]),
            "Cmd<Bounce>".parse().unwrap(),
            (),
        )
        .with_bounce_backs(BounceBacks::Timer(WaitTime::from_secs(2)));
        vec![
            ping.clone().into(),
            ping.pong(ReflectedCore::error(StatusCode::CONFLICT, "exists"))
                .into(),
            ripple.clone().into(),
            ripple
                .clone()
                .with_bounce_backs(BounceBacks::Count(3))
                .into(),
            Ripple::new(
                s("localhost"),
                Recipients::Stars,
                Method::ext("X").unwrap(),
                1i64,
            )
            .with_bounce_backs(BounceBacks::Single)
            .into(),
            Ripple::new(
                s("localhost"),
                Recipients::Watchers(p("localhost:a")),
                Method::ext("X").unwrap(),
                (),
            )
            .into(),
            ripple
                .echo(s("localhost:a"), ReflectedCore::ok(true))
                .into(),
            Signal::new(
                s("localhost"),
                s("localhost:log"),
                "Cmd<Log>".parse().unwrap(),
                "hi",
            )
            .with_priority(Priority::Low)
            .into(),
        ]
    }

    fn every_substance() -> Vec<Substance> {
        let stub = Stub {
            point: p("repo:hello:1.0.0:/wasm/hello.wasm"),
            kind: Kind::Artifact(ArtifactSubKind::Wasm),
            status: Status::Panic("out of fuel".into()),
        };
        let mut properties = Properties::new();
        properties.insert(
            "config",
            Property::locked("repo:hello:1.0.0:/config/x.mechtron"),
        );
        let mut map = BTreeMap::new();
        map.insert("a".to_string(), Substance::Int(-1));
        map.insert("b".to_string(), Substance::List(vec![Substance::Empty]));
        vec![
            Substance::Empty,
            Substance::from("text"),
            Substance::Bin(vec![0, 1, 2, 255]),
            Substance::Bool(false),
            Substance::Int(i64::MIN),
            Substance::json(&serde_json::json!({"a": [1, 2.5, null]})).unwrap(),
            Substance::Point(p("<<STAR::central:nexus[3]>>::star")),
            Substance::Surface(s("localhost@Shell+Topic<Path>(a:b)")),
            Substance::List(vec![Substance::Int(1), Substance::from("x")]),
            Substance::Map(map),
            Substance::from(stub.clone()),
            Substance::from(Details { stub, properties }),
            Substance::Status(Status::Fatal("bad (wasm)".into())),
            Substance::RawCommand(
                RawCommand::new("publish ^[ b.zip ]-> repo:b:1.0.0")
                    .with_transfer("b.zip", vec![80, 75, 3, 4]),
            ),
            Substance::Errors(Errors::from(vec!["a".to_string(), "b".to_string()])),
            Substance::Token(Token::new("secret")),
            Substance::from(Wave::from(ping())),
            Substance::HttpRequest(
                HttpRequest::new(HttpMethod::Post, "/x?y=1")
                    .with_header("Content-Type", "application/json")
                    .with_body("{}"),
            ),
            Substance::HttpResponse(HttpResponse::ok("<p>").with_header("Set-Cookie", "a")),
        ]
    }

    #[test]
    fn base64_matches_the_rfc_vectors() {
        for (input, expected) in [
            (&b""[..], ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
            (b"fooba", "Zm9vYmE="),
            (b"foobar", "Zm9vYmFy"),
            (&[0xff, 0xfe, 0x00], "//4A"),
        ] {
            assert_eq!(super::base64(input), expected, "{input:?}");
        }
    }

    #[test]
    fn every_wave_kind_round_trips() {
        for wave in every_wave() {
            let frame = encode(&wave).unwrap();
            assert_eq!(decode::<Wave>(&frame).unwrap(), wave, "{:?}", wave.kind());
        }
    }

    #[test]
    fn wave_families_round_trip_on_their_own() {
        let directed = DirectedWave::from(ping());
        assert_eq!(
            decode::<DirectedWave>(&encode(&directed).unwrap()).unwrap(),
            directed
        );
        let reflected = ReflectedWave::from(ping().pong(ReflectedCore::ok(())));
        assert_eq!(
            decode::<ReflectedWave>(&encode(&reflected).unwrap()).unwrap(),
            reflected
        );
        let core = ReflectedCore::ok("x").with_header("A", "b");
        assert_eq!(
            decode::<ReflectedCore>(&encode(&core).unwrap()).unwrap(),
            core
        );
    }

    #[test]
    fn every_substance_round_trips() {
        let all = every_substance();
        assert_eq!(all.len(), 19);
        for substance in all {
            let frame = encode(&substance).unwrap();
            assert_eq!(
                decode::<Substance>(&frame).unwrap(),
                substance,
                "{}",
                substance.kind()
            );
        }
    }

    #[test]
    fn a_small_ping_is_small() {
        let ping = Wave::from(Ping::new(
            s("localhost:app:client"),
            s("localhost:app:hello"),
            Method::ext("Hello").unwrap(),
            "world",
        ));
        let frame = encode(&ping).unwrap();
        assert!(frame.len() <= 97, "{} bytes", frame.len());
    }

    #[test]
    fn ids_are_sixteen_bytes() {
        let id = WaveId::from_bytes([0xab; 16]);
        let frame = encode(&id).unwrap();
        assert_eq!(frame[0], 16);
        assert_eq!(frame[1..], [0xab; 16]);
        assert_eq!(decode::<WaveId>(&frame), Ok(id));
        let mut short = vec![15];
        short.extend_from_slice(&[0xab; 15]);
        assert!(matches!(
            decode::<WaveId>(&short),
            Err(WireError::Malformed(_))
        ));
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut frame = encode(&Substance::from("x")).unwrap();
        frame.extend_from_slice(&[0, 0]);
        assert_eq!(
            decode::<Substance>(&frame),
            Err(WireError::TrailingBytes { extra: 2 })
        );
    }

    #[test]
    fn oversize_frames_are_refused_both_ways() {
        let wire = Wire::new(64);
        let big = Substance::Bin(vec![7; 100]);
        assert_eq!(
            wire.encode(&big),
            Err(WireError::FrameTooLarge {
                size: 102,
                limit: 64
            })
        );
        let frame = encode(&big).unwrap();
        assert_eq!(frame.len(), 102);
        assert_eq!(
            wire.decode::<Substance>(&frame),
            Err(WireError::FrameTooLarge {
                size: 102,
                limit: 64
            })
        );
        assert_eq!(Wire::new(200).decode::<Substance>(&frame).unwrap(), big);
        assert_eq!(Wire::new(usize::MAX).max_frame(), Wire::CEILING);
        assert_eq!(Wire::default().max_frame(), 16 * 1024 * 1024);
    }

    #[test]
    fn malformed_frames_are_errors() {
        assert!(matches!(decode::<Wave>(&[]), Err(WireError::Malformed(_))));
        // An unknown variant of Substance.
        assert!(matches!(
            decode::<Substance>(&[200]),
            Err(WireError::Malformed(_))
        ));
        // Text that is not UTF-8.
        assert!(matches!(
            decode::<Substance>(&[1, 2, 0xff, 0xfe]),
            Err(WireError::Malformed(_))
        ));
        // Json that is not JSON.
        let frame = encode(&Substance::from("{nope")).unwrap();
        let mut json = frame.clone();
        json[0] = 5;
        let err = decode::<Substance>(&json).unwrap_err();
        assert!(err.to_string().contains("invalid JSON"), "{err}");
        // A status code out of range.
        let mut core = encode(&ReflectedCore::ok(())).unwrap();
        core[0] = 0;
        assert!(decode::<ReflectedCore>(&core).is_err());
    }

    #[test]
    fn a_lying_length_prefix_does_not_allocate() {
        // Substance::Text with a length prefix of u64::MAX (253 = a u64 follows) and no bytes
        // behind it.
        let frame = [1, 253, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(
            decode::<Substance>(&frame),
            Err(WireError::Malformed(
                "a length in the frame claims more than it holds".into()
            ))
        );
        // A length that fits the limit but not the frame is refused too (252 = a u32 follows).
        let frame = [1, 252, 0x00, 0x00, 0x01, 0x00];
        assert!(decode::<Substance>(&frame).is_err());
        // A list claiming 2^60 elements.
        let frame = [8, 253, 0, 0, 0, 0, 0, 0, 0, 0x10];
        assert!(decode::<Substance>(&frame).is_err());
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        // Lists nested 10,000 deep: [8, 1] repeated, then Empty.
        let mut frame = Vec::new();
        for _ in 0..10_000 {
            frame.extend_from_slice(&[8, 1]);
        }
        frame.push(0);
        let err = decode::<Substance>(&frame).unwrap_err();
        assert!(err.to_string().contains("nest deeper than 32"), "{err}");

        let mut deep = Substance::Empty;
        for _ in 0..40 {
            deep = Substance::List(vec![deep]);
        }
        assert!(matches!(encode(&deep), Err(WireError::Encode(_))));
    }

    #[test]
    fn framed_frames_carry_their_length() {
        let wire = Wire::default();
        let value = Substance::Bin(vec![7; 300]);
        let framed = wire.encode_framed(&value).unwrap();
        let plain = wire.encode(&value).unwrap();
        assert_eq!(framed.len(), plain.len() + 4);
        assert_eq!(framed[..4], (plain.len() as u32).to_be_bytes());
        assert_eq!(framed[4..], plain[..]);
        let len = wire
            .frame_len([framed[0], framed[1], framed[2], framed[3]])
            .unwrap();
        assert_eq!(len, plain.len());
        assert_eq!(wire.decode::<Substance>(&framed[4..]).unwrap(), value);
    }

    #[test]
    fn framed_lengths_over_the_limit_are_refused() {
        let wire = Wire::new(100);
        assert_eq!(wire.frame_len(100u32.to_be_bytes()), Ok(100));
        assert_eq!(
            wire.frame_len(101u32.to_be_bytes()),
            Err(WireError::FrameTooLarge {
                size: 101,
                limit: 100
            })
        );
        assert_eq!(
            Wire::default().frame_len([0xff; 4]),
            Err(WireError::FrameTooLarge {
                size: u32::MAX as usize,
                limit: Wire::DEFAULT_MAX_FRAME
            })
        );
        assert_eq!(wire.frame_len([0; 4]), Ok(0));
        assert_eq!(
            wire.encode_framed(&Substance::Bin(vec![1; 100])),
            Err(WireError::FrameTooLarge {
                size: 102,
                limit: 100
            })
        );
    }

    #[test]
    fn ptr_len_packing() {
        let packed = pack_ptr_len(0x1234_5678, 0x9abc_def0);
        assert_eq!(packed, 0x1234_5678_9abc_def0);
        assert_eq!(unpack_ptr_len(packed), (0x1234_5678, 0x9abc_def0));
        assert_eq!(unpack_ptr_len(0), (0, 0));
    }
}

//! Reading and writing length-prefixed frames on a stream, with timeouts: the byte format is
//! [`Wire::encode_framed`]'s; this module only moves the bytes.

use std::io;
use std::time::Duration;

use cosmic_space::{Wire, WireError};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::timeout;

/// Bytes read or written per step: a stalled peer is noticed within one step, and progress
/// is reported per step.
const CHUNK: usize = 64 * 1024;

/// Why a frame could not be read or written.
#[derive(Debug)]
pub(crate) enum FrameError {
    /// The peer closed the stream cleanly before a frame began.
    Closed,
    /// The peer closed the stream in the middle of a frame.
    Truncated,
    /// Nothing arrived (or could be sent) in time.
    TimedOut,
    /// The length prefix announces a frame over the limit.
    TooLarge(WireError),
    /// The stream failed.
    Io(io::Error),
}

/// Reads one frame: the first byte may take up to `first`, every later step up to `stall`.
/// The frame's buffer grows as bytes arrive, so a prefix that lies costs no memory.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    wire: &Wire,
    first: Duration,
    stall: Duration,
) -> Result<Vec<u8>, FrameError> {
    let mut prefix = [0u8; Wire::PREFIX_LEN];
    let mut got = 0;
    while got < prefix.len() {
        let wait = if got == 0 { first } else { stall };
        match timeout(wait, reader.read(&mut prefix[got..])).await {
            Err(_) => return Err(FrameError::TimedOut),
            Ok(Err(err)) => return Err(FrameError::Io(err)),
            Ok(Ok(0)) if got == 0 => return Err(FrameError::Closed),
            Ok(Ok(0)) => return Err(FrameError::Truncated),
            Ok(Ok(n)) => got += n,
        }
    }
    let len = wire.frame_len(prefix).map_err(FrameError::TooLarge)?;
    let mut frame = Vec::with_capacity(len.min(CHUNK));
    while frame.len() < len {
        let step = (len - frame.len()).min(CHUNK);
        frame.reserve(step);
        let mut limited = (&mut *reader).take(step as u64);
        match timeout(stall, limited.read_buf(&mut frame)).await {
            Err(_) => return Err(FrameError::TimedOut),
            Ok(Err(err)) => return Err(FrameError::Io(err)),
            Ok(Ok(0)) => return Err(FrameError::Truncated),
            Ok(Ok(_)) => {}
        }
    }
    Ok(frame)
}

/// Writes `bytes` (a framed frame) in steps of at most 64 KiB, each within `stall`, telling
/// `progress` how many bytes have gone out of how many.
pub(crate) async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    bytes: &[u8],
    stall: Duration,
    progress: &mut (dyn FnMut(u64, u64) + Send),
) -> Result<(), FrameError> {
    let total = bytes.len() as u64;
    let mut sent = 0;
    for chunk in bytes.chunks(CHUNK) {
        match timeout(stall, writer.write_all(chunk)).await {
            Err(_) => return Err(FrameError::TimedOut),
            Ok(Err(err)) => return Err(FrameError::Io(err)),
            Ok(Ok(())) => {}
        }
        sent += chunk.len() as u64;
        progress(sent, total);
    }
    match timeout(stall, writer.flush()).await {
        Err(_) => Err(FrameError::TimedOut),
        Ok(Err(err)) => Err(FrameError::Io(err)),
        Ok(Ok(())) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cosmic_space::Substance;

    const SECOND: Duration = Duration::from_secs(1);

    #[tokio::test]
    async fn frames_round_trip_through_a_stream() {
        let wire = Wire::default();
        let big = Substance::Bin(vec![3; 200_000]);
        let (mut a, mut b) = tokio::io::duplex(1024);
        let bytes = wire.encode_framed(&big).unwrap();
        let expected = bytes.len() as u64;
        let writer = tokio::spawn(async move {
            let mut steps = Vec::new();
            write_frame(&mut a, &bytes, SECOND, &mut |sent, total| {
                steps.push((sent, total))
            })
            .await
            .unwrap();
            steps
        });
        let frame = read_frame(&mut b, &wire, SECOND, SECOND).await.unwrap();
        assert_eq!(wire.decode::<Substance>(&frame).unwrap(), big);
        let steps = writer.await.unwrap();
        assert_eq!(steps.len(), 4);
        assert_eq!(steps[0], (65536, expected));
        assert_eq!(steps.last(), Some(&(expected, expected)));
    }

    #[tokio::test]
    async fn a_clean_close_a_truncation_and_an_oversize_prefix_are_told_apart() {
        let wire = Wire::new(100);
        let (a, mut b) = tokio::io::duplex(64);
        drop(a);
        assert!(matches!(
            read_frame(&mut b, &wire, SECOND, SECOND).await,
            Err(FrameError::Closed)
        ));

        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&[0, 0, 0, 10, 1, 2]).await.unwrap();
        drop(a);
        assert!(matches!(
            read_frame(&mut b, &wire, SECOND, SECOND).await,
            Err(FrameError::Truncated)
        ));

        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&[0, 0, 0]).await.unwrap();
        drop(a);
        assert!(matches!(
            read_frame(&mut b, &wire, SECOND, SECOND).await,
            Err(FrameError::Truncated)
        ));

        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&[0, 0, 0, 101]).await.unwrap();
        assert!(matches!(
            read_frame(&mut b, &wire, SECOND, SECOND).await,
            Err(FrameError::TooLarge(WireError::FrameTooLarge {
                size: 101,
                limit: 100
            }))
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn silence_and_stalls_time_out() {
        let wire = Wire::default();
        let (_a, mut b) = tokio::io::duplex(64);
        assert!(matches!(
            read_frame(&mut b, &wire, SECOND, SECOND).await,
            Err(FrameError::TimedOut)
        ));
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&[0, 0, 0, 10, 1]).await.unwrap();
        assert!(matches!(
            read_frame(&mut b, &wire, Duration::from_secs(600), SECOND).await,
            Err(FrameError::TimedOut)
        ));
    }
}

//! A socket read through a buffer that is filled only with what arrives. tokio's
//! `BufReader` asks for its buffer zeroed, and the allocator writes those zeros wherever it
//! reuses memory, so links held much of their 64 KiB resident from their first byte, idle
//! or not. Here the buffer is allocated without being written, and a read writes only the
//! bytes it gets: an idle link touches a page or two of it (bench/README.md, issue 14 step
//! 20: 16–21 KiB less per idle link).

use std::{
    io,
    pin::Pin,
    task::{Context, Poll, ready},
};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, ReadBuf};

/// `inner`, read up to `capacity` bytes at a time; writes go straight through.
#[derive(Debug)]
pub struct ReadAhead<S> {
    inner: S,
    buffered: BytesMut,
    capacity: usize,
}

impl<S> ReadAhead<S> {
    pub fn new(inner: S, capacity: usize) -> Self {
        Self {
            inner,
            buffered: BytesMut::new(),
            capacity,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ReadAhead<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.buffered.is_empty() {
            // A read as large as the buffer gains nothing from it.
            if buf.remaining() >= this.capacity {
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            }
            // Drained, the allocation is reused from its start, not grown.
            this.buffered.reserve(this.capacity);
            let read = ready!(tokio_util::io::poll_read_buf(
                Pin::new(&mut this.inner),
                cx,
                &mut this.buffered,
            ))?;
            if read == 0 {
                return Poll::Ready(Ok(()));
            }
        }
        let n = buf.remaining().min(this.buffered.len());
        buf.put_slice(&this.buffered[..n]);
        this.buffered.advance(n);
        Poll::Ready(Ok(()))
    }
}

crate::write_through!(ReadAhead, inner);

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn reads_everything_in_order_through_small_and_large_reads_then_the_end() {
        let (near, mut far) = tokio::io::duplex(1 << 20);
        let sent: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let writer = {
            let sent = sent.clone();
            tokio::spawn(async move {
                for chunk in sent.chunks(7_001) {
                    far.write_all(chunk).await.unwrap();
                }
                far.shutdown().await.unwrap();
            })
        };
        let mut reader = ReadAhead::new(near, 16 * 1024);
        let mut got = Vec::new();
        // Reads smaller than, equal to and larger than the buffer, in turn.
        for size in [1usize, 4096, 16 * 1024, 40_000].into_iter().cycle() {
            let mut chunk = vec![0; size];
            let n = reader.read(&mut chunk).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&chunk[..n]);
        }
        writer.await.unwrap();
        assert_eq!(got, sent);
    }

    #[tokio::test]
    async fn writes_go_straight_through() {
        let (near, mut far) = tokio::io::duplex(1024);
        let mut socket = ReadAhead::new(near, 16 * 1024);
        socket.write_all(b"hello").await.unwrap();
        let mut got = [0; 5];
        far.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello");
    }
}

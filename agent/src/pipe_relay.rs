//! Two TCP sockets joined in the kernel: each direction `splice`s from one socket into a
//! pipe and from the pipe into the other, so the bytes of `adit access tcp` are never copied
//! into this process and out again (the copy otherwise costs it most of its CPU in bulk).

use std::io;

use rustix::pipe::{PipeFlags, SpliceFlags, pipe_with, splice};
use tokio::{
    io::{AsyncWriteExt, Interest},
    net::{
        TcpStream,
        tcp::{OwnedReadHalf, OwnedWriteHalf},
    },
};

/// A pipe's default capacity: what one `splice` moves at most.
const PIPE_CAPACITY: usize = 64 * 1024;

/// Carries bytes both ways until both directions have ended; an end of one direction is
/// passed on as a half-close. The first error ends both.
pub(crate) async fn join(a: TcpStream, b: TcpStream) -> io::Result<()> {
    let (a_read, a_write) = a.into_split();
    let (b_read, b_write) = b.into_split();
    tokio::try_join!(one_way(a_read, b_write), one_way(b_read, a_write))?;
    Ok(())
}

async fn one_way(mut from: OwnedReadHalf, mut to: OwnedWriteHalf) -> io::Result<()> {
    // The pipe is made at the first byte (or the end), so that an idle stream holds none.
    from.as_ref().readable().await?;
    let (pipe_out, pipe_in) = match pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK) {
        Ok(pipe) => pipe,
        // Out of descriptors, say: the bytes still go, through this process.
        Err(e) => {
            tracing::debug!(error = %e, "no pipe to splice through; copying");
            tokio::io::copy(&mut from, &mut to).await?;
            return to.shutdown().await;
        }
    };
    let (source, sink) = (from.as_ref(), to.as_ref());
    loop {
        source.readable().await?;
        let moved = source.try_io(Interest::READABLE, || {
            Ok(splice(
                source,
                None,
                &pipe_in,
                None,
                PIPE_CAPACITY,
                flags(),
            )?)
        });
        let mut in_pipe = match moved {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        };
        while in_pipe > 0 {
            sink.writable().await?;
            match sink.try_io(Interest::WRITABLE, || {
                Ok(splice(&pipe_out, None, sink, None, in_pipe, flags())?)
            }) {
                Ok(n) => in_pipe -= n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }
    to.shutdown().await
}

fn flags() -> SpliceFlags {
    SpliceFlags::MOVE | SpliceFlags::NONBLOCK
}

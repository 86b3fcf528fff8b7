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

async fn one_way(from: OwnedReadHalf, mut to: OwnedWriteHalf) -> io::Result<()> {
    // Made at the first byte, so that an idle stream holds no pipe.
    let mut pipe = None;
    loop {
        let source = from.as_ref();
        source.readable().await?;
        let (pipe_out, pipe_in) = match &pipe {
            Some(pipe) => pipe,
            None => pipe.insert(pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?),
        };
        let moved = source.try_io(Interest::READABLE, || {
            Ok(splice(
                source,
                None,
                &*pipe_in,
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
        let sink = to.as_ref();
        while in_pipe > 0 {
            sink.writable().await?;
            match sink.try_io(Interest::WRITABLE, || {
                Ok(splice(&*pipe_out, None, sink, None, in_pipe, flags())?)
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

//! The link between a connector and the edge, as both ends see it: TLS configuration
//! (the connector pins the edge's CA by hash), the length-prefixed hello that opens a data
//! connection, and the HTTP/2 settings the reversed connection runs with.

mod error;
pub mod frame;
pub mod h2;
pub mod headers;
pub mod metrics;
pub mod read_ahead;
pub mod relay;
pub mod signal;
pub mod tls;
pub mod workers;

pub use error::Error;

/// `AsyncWrite` for `$wrapper<IO>` that passes every call to its field `$field`: for
/// wrappers that change only how a socket is read (`read_ahead::ReadAhead`, the edge's
/// watch on a visitor's connection).
#[macro_export]
macro_rules! write_through {
    ($wrapper:ident, $field:ident) => {
        impl<IO: ::tokio::io::AsyncWrite + Unpin> ::tokio::io::AsyncWrite for $wrapper<IO> {
            fn poll_write(
                self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
                buf: &[u8],
            ) -> ::std::task::Poll<::std::io::Result<usize>> {
                ::std::pin::Pin::new(&mut self.get_mut().$field).poll_write(cx, buf)
            }

            fn poll_write_vectored(
                self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
                bufs: &[::std::io::IoSlice<'_>],
            ) -> ::std::task::Poll<::std::io::Result<usize>> {
                ::std::pin::Pin::new(&mut self.get_mut().$field).poll_write_vectored(cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                self.$field.is_write_vectored()
            }

            fn poll_flush(
                self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
            ) -> ::std::task::Poll<::std::io::Result<()>> {
                ::std::pin::Pin::new(&mut self.get_mut().$field).poll_flush(cx)
            }

            fn poll_shutdown(
                self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
            ) -> ::std::task::Poll<::std::io::Result<()>> {
                ::std::pin::Pin::new(&mut self.get_mut().$field).poll_shutdown(cx)
            }
        }
    };
}

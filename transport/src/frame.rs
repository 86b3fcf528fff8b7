//! Length-prefixed JSON frames: a 4-byte big-endian length, then that many bytes of JSON.
//! Only the hello uses them, so simplicity wins over speed; the limit keeps a hostile peer
//! from making us allocate more than it is worth.

use serde::{Serialize, de::DeserializeOwned};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::Error;

pub async fn write_frame<W, T>(io: &mut W, message: &T) -> Result<(), Error>
where
    W: AsyncWrite + Unpin,
    T: Serialize,
{
    let body = serde_json::to_vec(message)?;
    let len = u32::try_from(body.len()).map_err(|_| Error::FrameTooLarge {
        len: u32::MAX,
        max: u32::MAX,
    })?;
    let mut buf = Vec::with_capacity(4 + body.len());
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(&body);
    io.write_all(&buf).await?;
    io.flush().await?;
    Ok(())
}

pub async fn read_frame<R, T>(io: &mut R, max_len: u32) -> Result<T, Error>
where
    R: AsyncRead + Unpin,
    T: DeserializeOwned,
{
    let len = io.read_u32().await?;
    if len > max_len {
        return Err(Error::FrameTooLarge { len, max: max_len });
    }
    let mut body = vec![0; len as usize];
    io.read_exact(&mut body).await?;
    Ok(serde_json::from_slice(&body)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trip() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        write_frame(&mut a, &vec![1u32, 2, 3]).await.unwrap();
        let got: Vec<u32> = read_frame(&mut b, 1024).await.unwrap();
        assert_eq!(got, vec![1, 2, 3]);
    }

    #[tokio::test]
    async fn refuses_oversized_length_without_reading_it() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
        let err = read_frame::<_, serde_json::Value>(&mut b, 1024)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::FrameTooLarge { .. }), "{err}");
    }

    #[tokio::test]
    async fn malformed_json_is_an_error() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&3u32.to_be_bytes()).await.unwrap();
        a.write_all(b"{{{").await.unwrap();
        let err = read_frame::<_, serde_json::Value>(&mut b, 1024)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::MalformedFrame(_)), "{err}");
    }

    #[tokio::test]
    async fn truncated_frame_is_an_error() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&10u32.to_be_bytes()).await.unwrap();
        a.write_all(b"{}").await.unwrap();
        drop(a);
        assert!(
            read_frame::<_, serde_json::Value>(&mut b, 1024)
                .await
                .is_err()
        );
    }
}

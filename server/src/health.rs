//! `adit-server health`: asks a running server's API listener whether it is ready
//! (`GET /readyz`), for a container's HEALTHCHECK or a service manager. Plain HTTP/1.1 on
//! one connection: the check must not need more than the server it checks.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::Error;

/// How long the whole check may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Asks `http://HOST:PORT` (the API listener) for `/readyz`: its answer's text when ready,
/// an error saying why not otherwise.
pub async fn check(url: &str) -> Result<String, Error> {
    let fail = |why: String| Error::Config(format!("{url}: {why}"));
    let authority = url
        .strip_prefix("http://")
        .ok_or_else(|| fail("only http:// API addresses can be checked".into()))?
        .trim_end_matches('/');
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(authority).await?;
        let request =
            format!("GET /readyz HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        // The answer is a few lines; more is not a server of ours.
        stream.take(64 * 1024).read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    let answer = tokio::time::timeout(TIMEOUT, exchange)
        .await
        .map_err(|_| fail(format!("no answer within {TIMEOUT:?}")))?
        .map_err(|e| fail(e.to_string()))?;
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head.split(' ').nth(1).unwrap_or_default();
    if status == "200" {
        Ok(body.trim().to_owned())
    } else {
        Err(fail(format!("answered {status}: {}", body.trim())))
    }
}

//! Every protocol through the tunnel: SSH with real OpenSSH, bulk and concurrent TCP via
//! `adit access tcp`, half-close, refused origins, SOCKS5 into private networks, quick
//! tunnels and unix-socket origins.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use adit_agent::access::{AccessStream, EdgeTarget, serve_socks, serve_tcp};
use adit_core::ingress::Ingress;
use http::StatusCode;
use sha2::{Digest, Sha256};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::mpsc,
};
use tokio_util::sync::CancellationToken;

use crate::kit::*;

/// The `adit` binary `cargo test --workspace` builds beside this test binary.
fn adit_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let bin = dir.join("adit");
    assert!(
        bin.exists(),
        "{} is missing: run the tests with `cargo test --workspace`",
        bin.display()
    );
    bin
}

/// A TCP origin: echoes what it reads, hashing it; reports the hash of each connection
/// after the client's half-close.
pub(crate) async fn echo_origin(
    bind: &str,
) -> (SocketAddr, mpsc::UnboundedReceiver<(u64, String)>) {
    let listener = TcpListener::bind(bind).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            stream.set_nodelay(true).unwrap();
            let tx = tx.clone();
            tokio::spawn(async move {
                let (mut r, mut w) = stream.into_split();
                let mut hasher = Sha256::new();
                let mut total = 0u64;
                let mut buf = vec![0u8; 256 * 1024];
                loop {
                    let n = r.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buf[..n]);
                    total += n as u64;
                    if w.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
                let _ = w.shutdown().await;
                let _ = tx.send((total, hex::encode(hasher.finalize())));
            });
        }
    });
    (addr, rx)
}

struct Access {
    server: TestServer,
    connector: TestConnector,
    local: SocketAddr,
    stop: CancellationToken,
}

/// A tunnel whose rule sends `tcp.example.com` to `service`, and an `adit access tcp`
/// listener for it.
async fn access_to(service: &str) -> Access {
    let server = TestServer::spawn().await;
    let token = server.tunnel_with_route("tcp", "tcp.example.com").await;
    let connector = TestConnector::to(&token, service);
    server.wait_connections(&token, 4).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local = listener.local_addr().unwrap();
    let target = EdgeTarget::new(
        "tcp.example.com",
        Some(&format!("http://{}", server.edge)),
        None,
    )
    .unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(serve_tcp(listener, target, stop.clone()));
    Access {
        server,
        connector,
        local,
        stop,
    }
}

/// Sends `len` pseudo-random bytes, half-closes, and reads everything back; returns the
/// hashes of what was sent and what came back, and how much came back.
pub(crate) async fn round_trip(local: SocketAddr, len: usize, seed: u64) -> (String, String, u64) {
    let stream = TcpStream::connect(local).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (mut r, mut w) = stream.into_split();
    let writer = tokio::spawn(async move {
        let mut hasher = Sha256::new();
        let chunk = pseudo_random(1024 * 1024, seed);
        let mut left = len;
        while left > 0 {
            let n = left.min(chunk.len());
            w.write_all(&chunk[..n]).await.unwrap();
            hasher.update(&chunk[..n]);
            left -= n;
        }
        w.shutdown().await.unwrap();
        hex::encode(hasher.finalize())
    });
    let mut hasher = Sha256::new();
    let mut got = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = r.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        got += n as u64;
    }
    (writer.await.unwrap(), hex::encode(hasher.finalize()), got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gibibyte_through_access_tcp_keeps_its_checksum_both_ways() {
    const LEN: usize = 1024 * 1024 * 1024;
    let (origin, mut hashes) = echo_origin("127.0.0.1:0").await;
    let a = access_to(&format!("tcp://{origin}")).await;
    let (sent, echoed, got) = round_trip(a.local, LEN, 11).await;
    assert_eq!(got, LEN as u64);
    assert_eq!(echoed, sent, "the bytes that came back are the bytes sent");
    let (origin_got, origin_hash) = hashes.recv().await.unwrap();
    assert_eq!(
        (origin_got, origin_hash),
        (LEN as u64, sent),
        "the origin received exactly what was sent"
    );
    a.stop.cancel();
    a.connector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_tcp_streams() {
    let (origin, _hashes) = echo_origin("127.0.0.1:0").await;
    let a = access_to(&format!("tcp://{origin}")).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200u64 {
        let local = a.local;
        tasks.spawn(async move {
            let (sent, echoed, got) = round_trip(local, 10_000 + i as usize * 100, i).await;
            assert_eq!(sent, echoed, "stream {i}");
            assert_eq!(got, 10_000 + i * 100);
        });
    }
    let mut done = 0;
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
        done += 1;
    }
    assert_eq!(done, 200);
    a.stop.cancel();
    a.connector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_close_reaches_the_origin_and_the_reply_comes_back() {
    // The origin reads to EOF (which only the client's shutdown(WRITE) gives it), then
    // answers with a summary and closes.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        s.write_all(
            format!("received {} bytes, sha256 {}", got.len(), sha256_hex(&got)).as_bytes(),
        )
        .await
        .unwrap();
        s.shutdown().await.unwrap();
    });
    let a = access_to(&format!("tcp://{origin}")).await;
    let mut client = TcpStream::connect(a.local).await.unwrap();
    let data = pseudo_random(123_456, 5);
    client.write_all(&data).await.unwrap();
    client.shutdown().await.unwrap();
    let mut reply = String::new();
    tokio::time::timeout(Duration::from_secs(10), client.read_to_string(&mut reply))
        .await
        .expect("the reply arrives after the half-close")
        .unwrap();
    assert_eq!(
        reply,
        format!("received 123456 bytes, sha256 {}", sha256_hex(&data))
    );
    a.stop.cancel();
    a.connector.stop().await;
}

/// A server that speaks first (as SSH and SMTP do) is heard before the client sends a byte,
/// and its half-close leaves the other direction open: the client's bytes still reach it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_origin_speaks_first_and_half_closes_first() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = listener.local_addr().unwrap();
    let (heard_tx, heard_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        let (mut r, mut w) = s.into_split();
        w.write_all(b"220 origin ready\r\n").await.unwrap();
        w.shutdown().await.unwrap();
        let mut got = Vec::new();
        r.read_to_end(&mut got).await.unwrap();
        let _ = heard_tx.send(got);
    });
    let a = access_to(&format!("tcp://{origin}")).await;
    let mut client = TcpStream::connect(a.local).await.unwrap();
    let mut banner = String::new();
    tokio::time::timeout(Duration::from_secs(10), client.read_to_string(&mut banner))
        .await
        .expect("the banner and the origin's half-close arrive unasked")
        .unwrap();
    assert_eq!(banner, "220 origin ready\r\n");
    let data = pseudo_random(200_000, 8);
    client.write_all(&data).await.unwrap();
    client.shutdown().await.unwrap();
    let heard = tokio::time::timeout(Duration::from_secs(10), heard_rx)
        .await
        .expect("the client's bytes reach the origin after its half-close")
        .unwrap();
    assert_eq!(sha256_hex(&heard), sha256_hex(&data));
    a.stop.cancel();
    a.connector.stop().await;
}

/// `adit access` streams go raw (the bytes as they are, no WebSocket framing), and a
/// WebSocket from an `adit access` of an earlier release is still bridged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_streams_are_raw_and_websockets_still_work() {
    let (origin, _) = echo_origin("127.0.0.1:0").await;
    let a = access_to(&format!("tcp://{origin}")).await;
    let (sent, echoed, got) = round_trip(a.local, 300_000, 9).await;
    assert_eq!((sent, got), (echoed, 300_000));
    let streams = |kind: &str| {
        let text = a.connector.metrics.render();
        let prefix = format!("adit_tunnel_streams_total{{kind=\"{kind}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map_or(0, |n| n.trim().parse::<u64>().unwrap())
    };
    assert_eq!((streams("raw"), streams("websocket")), (1, 0));

    let target = EdgeTarget::new(
        "tcp.example.com",
        Some(&format!("http://{}", a.server.edge)),
        None,
    )
    .unwrap();
    let ws = target.websocket("/", None).await.unwrap();
    let (mut here, there) = tokio::io::duplex(64 * 1024);
    let bridged = tokio::spawn(AccessStream::WebSocket(Box::new(ws)).join(there));
    here.write_all(b"framed the old way").await.unwrap();
    here.shutdown().await.unwrap();
    let mut back = String::new();
    here.read_to_string(&mut back).await.unwrap();
    assert_eq!(back, "framed the old way");
    bridged.await.unwrap().unwrap();
    assert_eq!((streams("raw"), streams("websocket")), (1, 1));
    a.stop.cancel();
    a.connector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_over_the_https_edge_verifies_the_servers_ca() {
    let (origin, _) = echo_origin("127.0.0.1:0").await;
    let a = access_to(&format!("tcp://{origin}")).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local = listener.local_addr().unwrap();
    let edge = format!("https://{}", a.server.edge_tls);
    let target = EdgeTarget::new("tcp.example.com", Some(&edge), Some(a.server.ca_file())).unwrap();
    tokio::spawn(serve_tcp(listener, target, a.stop.clone()));
    let (sent, echoed, got) = round_trip(local, 1_000_000, 3).await;
    assert_eq!((sent, got), (echoed, 1_000_000));

    // Without the server's CA the system roots do not know the edge: refused.
    let untrusted = EdgeTarget::new("tcp.example.com", Some(&edge), None).unwrap();
    let Err(err) = untrusted.websocket("/", None).await else {
        panic!("an edge the client cannot verify must be refused");
    };
    assert!(err.to_string().contains("TLS handshake failed"), "{err}");
    a.stop.cancel();
    a.connector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_origin_closes_the_stream_promptly() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let a = access_to(&format!("tcp://{dead}")).await;
    let mut client = TcpStream::connect(a.local).await.unwrap();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(5), client.read(&mut buf))
        .await
        .expect("the local connection is closed promptly");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    // The same listener keeps serving once the origin is up: nothing leaked or wedged.
    a.stop.cancel();
    a.connector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_to_a_tcp_service_explains_itself() {
    let (origin, _) = echo_origin("127.0.0.1:0").await;
    let a = access_to(&format!("ssh://{origin}")).await;
    let r = client()
        .request(
            to_edge(a.server.edge, "tcp.example.com", "/")
                .header("accept", "application/json")
                .body(full(""))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = serde_json::from_slice(&body_bytes(r).await).unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("adit access"),
        "{body}"
    );
    a.connector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssh_runs_a_session_through_the_tunnel() {
    let Some(sshd) = ["/usr/sbin/sshd", "/usr/bin/sshd"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
    else {
        panic!(
            "sshd is not installed: `.ci/run` installs openssh-server; locally: apt-get install openssh-server"
        );
    };
    let dir = tempfile::tempdir().unwrap();
    let keygen = |path: &std::path::Path| {
        let status = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success());
    };
    let host_key = dir.path().join("host_key");
    let user_key = dir.path().join("user_key");
    keygen(&host_key);
    keygen(&user_key);
    std::fs::copy(
        dir.path().join("user_key.pub"),
        dir.path().join("authorized_keys"),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\nPidFile {}\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n",
            host_key.display(),
            dir.path().join("authorized_keys").display(),
            dir.path().join("sshd.pid").display(),
        ),
    )
    .unwrap();
    std::fs::create_dir_all("/run/sshd").ok();
    let mut sshd = tokio::process::Command::new(&sshd)
        .args(["-D", "-e", "-f"])
        .arg(&config)
        .kill_on_drop(true)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    eventually(Duration::from_secs(10), "sshd listening", || async move {
        TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()
            .map(|_| ())
    })
    .await;

    let server = TestServer::spawn().await;
    let token = server.tunnel_with_route("ssh", "ssh.example.com").await;
    let connector = TestConnector::to(&token, &format!("ssh://127.0.0.1:{port}"));
    server.wait_connections(&token, 4).await;

    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let proxy = format!(
        "{} access ssh --hostname %h --edge http://{}",
        adit_bin().display(),
        server.edge
    );
    let data = pseudo_random(16 * 1024 * 1024, 99);
    let mut ssh = tokio::process::Command::new("ssh")
        .args([
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
        ])
        .arg("-o")
        .arg(format!("ProxyCommand={proxy}"))
        .arg("-i")
        .arg(&user_key)
        .arg(format!("{user}@ssh.example.com"))
        .arg("echo ok; sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = ssh.stdin.take().unwrap();
    let feed = tokio::spawn(async move {
        stdin.write_all(&data).await.unwrap();
        drop(stdin);
    });
    let output = tokio::time::timeout(Duration::from_secs(120), ssh.wait_with_output())
        .await
        .expect("ssh finishes")
        .unwrap();
    feed.await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "ssh failed: {stderr}");
    let expected = sha256_hex(&pseudo_random(16 * 1024 * 1024, 99));
    assert_eq!(stdout, format!("ok\n{expected}  -\n"), "stderr: {stderr}");
    connector.stop().await;
    let _ = sshd.kill().await;
}

/// A SOCKS5 CONNECT by hand; returns the reply code and, on success, the stream.
async fn socks_connect(proxy: SocketAddr, destination: SocksTarget<'_>) -> (u8, TcpStream) {
    let mut s = TcpStream::connect(proxy).await.unwrap();
    s.write_all(&[5, 1, 0]).await.unwrap();
    let mut choice = [0u8; 2];
    s.read_exact(&mut choice).await.unwrap();
    assert_eq!(choice, [5, 0]);
    let mut request = vec![5, 1, 0];
    match destination {
        SocksTarget::Ip(addr) => {
            let std::net::IpAddr::V4(ip) = addr.ip() else {
                unreachable!()
            };
            request.push(1);
            request.extend_from_slice(&ip.octets());
            request.extend_from_slice(&addr.port().to_be_bytes());
        }
        SocksTarget::Name(name, port) => {
            request.push(3);
            request.push(u8::try_from(name.len()).unwrap());
            request.extend_from_slice(name.as_bytes());
            request.extend_from_slice(&port.to_be_bytes());
        }
    }
    s.write_all(&request).await.unwrap();
    let mut reply = [0u8; 10];
    s.read_exact(&mut reply).await.unwrap();
    (reply[1], s)
}

enum SocksTarget<'a> {
    Ip(SocketAddr),
    Name(&'a str, u16),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socks5_reaches_routed_networks_and_nothing_else() {
    // The origin listens on 127.0.0.2, the only network routed to the tunnel.
    let (origin, _) = echo_origin("127.0.0.2:0").await;
    let server = TestServer::spawn().await;
    let token = server
        .tunnel_with_route("private", "unused.example.com")
        .await;
    let account = server
        .control
        .storage
        .ensure_account("default")
        .await
        .unwrap();
    server
        .control
        .create_ip_route(account, "private", "127.0.0.2/32", "lab")
        .await
        .unwrap();
    let connector = TestConnector::spawn(&token, Ingress::single("http_status:404").unwrap());
    server.wait_connections(&token, 4).await;

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let api = adit_agent::api_client::ApiCredentials {
        url: format!("http://{}", server.api),
        token: server.admin_token.clone(),
    };
    tokio::spawn(serve_socks(listener, api, stop.clone()));

    let (code, mut stream) = socks_connect(proxy, SocksTarget::Ip(origin)).await;
    assert_eq!(code, 0, "CONNECT into the routed network succeeds");
    stream.write_all(b"private hello").await.unwrap();
    stream.shutdown().await.unwrap();
    let mut echoed = Vec::new();
    stream.read_to_end(&mut echoed).await.unwrap();
    assert_eq!(echoed, b"private hello");

    // No route holds 127.0.0.3: the server has nowhere to send it.
    let (code, _) = socks_connect(proxy, SocksTarget::Ip("127.0.0.3:9".parse().unwrap())).await;
    assert_eq!(code, 0x03, "network unreachable");
    // A name the connector resolves outside its routes: the connector refuses it.
    let (code, _) = socks_connect(proxy, SocksTarget::Name("localhost", origin.port())).await;
    assert_eq!(code, 0x02, "not allowed by the connector's routes");
    stop.cancel();
    connector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unix_socket_origin_serves_http() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    |req: hyper::Request<hyper::body::Incoming>| async move {
                        Ok::<_, std::convert::Infallible>(http::Response::new(full(format!(
                            "unix says hi to {} at {}",
                            req.headers()["host"].to_str().unwrap(),
                            req.uri()
                        ))))
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    let server = TestServer::spawn().await;
    let token = server.tunnel_with_route("unix", "unix.example.com").await;
    let connector = TestConnector::to(&token, &format!("unix:{}", path.display()));
    server.wait_connections(&token, 4).await;
    let r = get(server.edge, "unix.example.com", "/x?y=1").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        body_bytes(r).await,
        "unix says hi to unix.example.com at /x?y=1"
    );
    connector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quick_tunnel_serves_then_vanishes_with_its_connector() {
    use clap::Parser;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let mut config = adit_server::Config::ephemeral(dir.path().join("data"));
    config.quick_tunnel_domain = Some("quick.example.com".into());
    // No zone may hold the quick-tunnel domain (the kit's default is example.com).
    config.zones = vec!["apps.example.com".into()];
    config.quick_tunnel_limit = 1;
    // Short, so the removal shows soon; not shorter, as a quick tunnel whose connector has
    // not connected within the grace after its creation is removed too (a loaded CI
    // machine once took longer than 300 ms).
    config.quick_tunnel_grace = Duration::from_secs(3);
    let server = TestServer::start_with(dir, config).await;
    let origin = spawn_origin(|_req: hyper::Request<hyper::body::Incoming>| async {
        http::Response::new(full("quick origin"))
    })
    .await;

    let (tx, mut lines) = mpsc::unbounded_channel();
    let cli = adit_agent::cli::Cli::try_parse_from([
        "adit".to_owned(),
        "tunnel".into(),
        "--url".into(),
        format!("http://{origin}"),
        "--quick-service".into(),
        format!("http://{}", server.api),
    ])
    .unwrap();
    let stop = CancellationToken::new();
    let run = tokio::spawn({
        let stop = stop.clone();
        async move { adit_agent::cli::run(cli, &mut Lines(tx, Vec::new()), stop).await }
    });
    let hostname = loop {
        let line = tokio::time::timeout(Duration::from_secs(10), lines.recv())
            .await
            .unwrap()
            .unwrap();
        if let Some(rest) = line.split("http://").nth(1) {
            break rest
                .trim_end_matches(|c: char| c == '|' || c.is_whitespace())
                .to_owned();
        }
    };
    assert!(hostname.ends_with(".quick.example.com"), "{hostname}");
    let host = hostname.clone();
    let edge = server.edge;
    eventually(Duration::from_secs(30), "the quick tunnel serving", || {
        let host = host.clone();
        async move {
            let r = client()
                .request(to_edge(edge, &host, "/").body(full("")).unwrap())
                .await
                .ok()?;
            (r.status() == StatusCode::OK).then_some(())
        }
    })
    .await;

    // One per client address: a second one is refused while the first lives.
    let second = adit_agent::api_client::ApiClient::new(adit_agent::api_client::ApiCredentials {
        url: format!("http://{}", server.api),
        token: String::new(),
    })
    .unwrap()
    .create_quick_tunnel()
    .await
    .unwrap_err();
    assert!(
        matches!(second, adit_agent::Error::Api { status: 429, .. }),
        "{second}"
    );

    stop.cancel();
    run.await.unwrap().unwrap();
    eventually(Duration::from_secs(30), "the quick tunnel removed", || {
        let host = hostname.clone();
        async move {
            let r = client()
                .request(to_edge(edge, &host, "/").body(full("")).unwrap())
                .await
                .ok()?;
            (r.status() == StatusCode::NOT_FOUND).then_some(())
        }
    })
    .await;
}

//! Ingress rules against real origins: HTTPS with HTTP/2, caPool, originServerName,
//! noTLSVerify, httpHostHeader, path and wildcard rules, fixed statuses, gRPC over h2c.

use std::{convert::Infallible, sync::Arc};

use adit_core::ingress::{Ingress, RawIngressRule};
use http::{Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use tokio::net::TcpListener;

use crate::kit::*;

/// An HTTPS origin (HTTP/1.1 and HTTP/2 by ALPN), on TCP and on a unix socket, whose
/// certificate, for `origin.internal`, is signed by a CA written to `ca.pem` in `dir`. It
/// answers with the HTTP version it saw.
async fn tls_origin(
    dir: &std::path::Path,
) -> (std::net::SocketAddr, std::path::PathBuf, std::path::PathBuf) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, &ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["origin.internal".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let ca_path = dir.join("ca.pem");
    std::fs::write(&ca_path, ca.pem()).unwrap();

    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![leaf.der().clone()],
        rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap(),
    )
    .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let unix_path = dir.join("tls.sock");
    let unix = tokio::net::UnixListener::bind(&unix_path).unwrap();
    let on_unix = acceptor.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = unix.accept().await {
            tokio::spawn(serve_tls(on_unix.clone(), stream));
        }
    });
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(serve_tls(acceptor.clone(), tcp));
        }
    });
    (addr, unix_path, ca_path)
}

/// Answers with the HTTP version seen, over TLS on any stream.
async fn serve_tls<S>(acceptor: tokio_rustls::TlsAcceptor, stream: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let Ok(tls) = acceptor.accept(stream).await else {
        return;
    };
    let service =
        hyper::service::service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
            Ok::<_, Infallible>(Response::new(full(format!("{:?}", req.version()))))
        });
    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(tls), service)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingress_rules_reach_the_right_origins() {
    let server = TestServer::spawn().await;
    let (tls_addr, tls_socket, ca) = tls_origin(server.dir.path()).await;
    let plain = spawn_origin(|req: hyper::Request<hyper::body::Incoming>| async move {
        let host = req
            .headers()
            .get("host")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let fwd = req
            .headers()
            .get("x-forwarded-host")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        Response::new(full(format!("{host} {fwd}")))
    })
    .await;
    // Accepts TCP and then says nothing: a TLS handshake that never completes.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = silent.accept().await {
            held.push(tcp);
        }
    });
    let ca = ca.display();
    let yaml = format!(
        r#"
- hostname: h2.example.com
  service: https://127.0.0.1:{port}
  originRequest: {{ caPool: "{ca}", originServerName: origin.internal, http2Origin: true }}
- hostname: h1.example.com
  service: https://127.0.0.1:{port}
  originRequest: {{ caPool: "{ca}", originServerName: origin.internal }}
- hostname: unix-tls.example.com
  service: unix+tls:{socket}
  originRequest: {{ caPool: "{ca}", originServerName: origin.internal }}
- hostname: insecure.example.com
  service: https://127.0.0.1:{port}
  originRequest: {{ noTLSVerify: true }}
- hostname: strict.example.com
  service: https://127.0.0.1:{port}
- hostname: slow.example.com
  service: https://{silent_addr}
  originRequest: {{ connectTimeout: 1s, tlsTimeout: 500ms }}
- hostname: "*.apps.example.com"
  path: ^/status
  service: http_status:418
- hostname: host.example.com
  service: http://{plain}
  originRequest: {{ httpHostHeader: internal.name }}
- service: http_status:404
"#,
        port = tls_addr.port(),
        socket = tls_socket.display(),
    );
    let rules: Vec<RawIngressRule> = serde_yaml::from_str(&yaml).unwrap();
    let ingress = Ingress::parse(&rules, None).unwrap();
    let token = server.tunnel_with_route("rules", "*.example.com").await;
    let connector = TestConnector::spawn(&token, ingress);
    server.wait_connections(&token, 4).await;

    let get = |host: &'static str, path: &'static str| {
        let edge = server.edge;
        async move {
            let r = client()
                .request(
                    to_edge(edge, host, path)
                        .header("accept", "application/json")
                        .body(full(""))
                        .unwrap(),
                )
                .await
                .unwrap();
            let status = r.status();
            (
                status,
                String::from_utf8(body_bytes(r).await.to_vec()).unwrap(),
            )
        }
    };
    assert_eq!(
        get("h2.example.com", "/").await,
        (StatusCode::OK, "HTTP/2.0".to_owned())
    );
    assert_eq!(
        get("h1.example.com", "/").await,
        (StatusCode::OK, "HTTP/1.1".to_owned())
    );
    assert_eq!(get("insecure.example.com", "/").await.0, StatusCode::OK);
    assert_eq!(
        get("unix-tls.example.com", "/").await,
        (StatusCode::OK, "HTTP/1.1".to_owned())
    );
    let (status, body) = get("strict.example.com", "/").await;
    assert_eq!(
        status,
        StatusCode::BAD_GATEWAY,
        "an unknown CA is refused: {body}"
    );
    assert!(body.contains("origin_unreachable"), "{body}");
    let asked = std::time::Instant::now();
    let (status, body) = get("slow.example.com", "/").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    // connectTimeout + tlsTimeout (1.5 s) applied; the visitor is not told the settings.
    assert!(
        asked.elapsed() >= std::time::Duration::from_millis(1500),
        "{body}"
    );
    assert!(
        body.contains("origin_timeout") && !body.contains("1.5s"),
        "{body}"
    );
    assert_eq!(
        get("x.apps.example.com", "/status/now").await.0,
        StatusCode::IM_A_TEAPOT
    );
    assert_eq!(
        get("x.apps.example.com", "/other").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get("host.example.com", "/").await,
        (StatusCode::OK, "internal.name host.example.com".to_owned())
    );
    connector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingress_cli_validates_and_matches() {
    use clap::Parser;
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yml");
    std::fs::write(
        &good,
        "ingress:\n  - hostname: a.example.com\n    service: http://localhost:8000\n  - hostname: '*.example.com'\n    path: ^/api\n    service: http://localhost:9000\n  - service: http_status:404\n",
    )
    .unwrap();
    let bad = dir.path().join("bad.yml");
    std::fs::write(&bad, "ingress:\n  - service: http_status:404\n  - hostname: a.example.com\n    service: http://x\n").unwrap();

    let run = |args: Vec<String>| async move {
        let cli = adit_agent::cli::Cli::try_parse_from(args).unwrap();
        let mut out = Vec::new();
        let result =
            adit_agent::cli::run(cli, &mut out, tokio_util::sync::CancellationToken::new()).await;
        (result, String::from_utf8(out).unwrap())
    };
    let args = |config: &std::path::Path, rest: &[&str]| {
        let mut v = vec![
            "adit".to_owned(),
            "ingress".into(),
            "--config".into(),
            config.display().to_string(),
        ];
        v.extend(rest.iter().map(|s| (*s).to_owned()));
        v
    };
    let (result, out) = run(args(&good, &["validate"])).await;
    result.unwrap();
    assert!(
        out.contains("Validating rules from") && out.ends_with("OK\n"),
        "{out}"
    );
    let (result, out) = run(args(&good, &["rule", "https://b.example.com/api/v1"])).await;
    result.unwrap();
    assert!(out.contains("Matched rule #1"), "{out}");
    assert!(out.contains("service: http://localhost:9000"), "{out}");
    let (result, out) = run(args(&good, &["rule", "A.example.com"])).await;
    result.unwrap();
    assert!(out.contains("Matched rule #0"), "{out}");
    let (result, _) = run(args(&bad, &["validate"])).await;
    let err = result.unwrap_err().to_string();
    assert!(err.contains("bad.yml") && err.contains("Rule #1"), "{err}");
}

/// gRPC through the edge to a gRPC server without TLS (`http2Origin: true` on `http://`,
/// h2c): a unary call and its error status, and a server stream whose messages arrive as
/// the origin sends them; statuses travel in trailers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_origin_in_clear_text_answers_unary_and_streaming_calls() {
    use tonic_health::{
        ServingStatus,
        pb::{HealthCheckRequest, health_check_response, health_client::HealthClient},
    };

    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("orders", ServingStatus::Serving)
        .await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(health)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );

    let server = TestServer::spawn().await;
    let yaml = format!("- service: http://{origin}\n  originRequest: {{ http2Origin: true }}\n");
    let rules: Vec<RawIngressRule> = serde_yaml::from_str(&yaml).unwrap();
    let token = server.tunnel_with_route("grpc", "grpc.example.com").await;
    let connector = TestConnector::spawn(&token, Ingress::parse(&rules, None).unwrap());
    server.wait_connections(&token, 4).await;

    // A gRPC client dials the edge (h2c) and names the routed hostname as its authority.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", server.edge))
        .unwrap()
        .origin("http://grpc.example.com".parse().unwrap())
        .connect()
        .await
        .unwrap();
    let mut client = HealthClient::new(channel);
    let check = |service: &str| HealthCheckRequest {
        service: service.to_owned(),
    };
    let serving = health_check_response::ServingStatus::Serving as i32;
    let answer = client.check(check("orders")).await.unwrap().into_inner();
    assert_eq!(answer.status, serving);
    let unknown = client.check(check("payments")).await.unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound, "{unknown:?}");

    // The stream's first message is the status now; each change follows as it happens.
    let mut watch = client.watch(check("orders")).await.unwrap().into_inner();
    assert_eq!(watch.message().await.unwrap().unwrap().status, serving);
    reporter
        .set_service_status("orders", ServingStatus::NotServing)
        .await;
    assert_eq!(
        watch.message().await.unwrap().unwrap().status,
        health_check_response::ServingStatus::NotServing as i32
    );
    reporter
        .set_service_status("orders", ServingStatus::Serving)
        .await;
    assert_eq!(watch.message().await.unwrap().unwrap().status, serving);
    drop(watch);

    connector.stop().await;
    server.shutdown().await;
}

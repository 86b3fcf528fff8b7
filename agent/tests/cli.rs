//! The `adit` binary as a user runs it: exit codes and messages. (Building this test also
//! makes `cargo test --workspace` build the binary the server's SSH test uses as
//! OpenSSH's ProxyCommand.)

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::process::Command;

fn adit(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_adit"))
        .args(args)
        .env("HOME", std::env::temp_dir())
        .output()
        .expect("adit runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn version_and_help() {
    let (ok, stdout, _) = adit(&["--version"]);
    assert!(ok);
    assert!(stdout.starts_with("adit "), "{stdout}");
    let (ok, stdout, _) = adit(&["access", "--help"]);
    assert!(ok);
    assert!(
        stdout.contains("ssh") && stdout.contains("socks"),
        "{stdout}"
    );
}

#[test]
fn a_garbage_token_exits_non_zero_saying_so() {
    let (ok, _, stderr) = adit(&[
        "tunnel",
        "run",
        "--token",
        "garbage",
        "--url",
        "hello_world",
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("Provided Tunnel token is not valid"),
        "{stderr}"
    );
}

#[test]
fn ingress_validate_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yml");
    std::fs::write(&good, "ingress:\n  - hostname: a.example.com\n    service: ssh://localhost\n  - service: http_status:404\n").unwrap();
    let (ok, stdout, _) = adit(&["ingress", "--config", good.to_str().unwrap(), "validate"]);
    assert!(ok, "{stdout}");
    assert!(stdout.ends_with("OK\n"), "{stdout}");
    let bad = dir.path().join("bad.yml");
    std::fs::write(&bad, "ingress:\n  - hostname: a.example.com:22\n    service: http://x\n  - service: http_status:404\n").unwrap();
    let (ok, _, stderr) = adit(&["ingress", "--config", bad.to_str().unwrap(), "validate"]);
    assert!(!ok);
    assert!(
        stderr.contains("bad.yml") && stderr.contains("Rule #1") && stderr.contains("port"),
        "{stderr}"
    );
}

#[test]
fn tunnel_ingress_takes_a_cloudflared_config_and_says_what_it_ignores() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        "tunnel: demo\nno-autoupdate: true\nwarp-routing:\n  enabled: true\ningress:\n  - hostname: a.example.com\n    service: http://localhost:8000\n    originRequest:\n      matchSNItoHost: true\n  - service: http_status:404\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let (ok, stdout, stderr) = adit(&["tunnel", "ingress", "--config", config, "validate"]);
    assert!(ok, "{stdout}{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{stdout}");
    assert_eq!(lines[0], format!("Validating rules from {config}"));
    assert!(
        lines[1].starts_with(&format!("{config}:2: `no-autoupdate` ignored")),
        "{stdout}"
    );
    assert!(
        lines[2].starts_with(&format!("{config}:3: `warp-routing` ignored")),
        "{stdout}"
    );
    assert!(
        lines[3].starts_with(&format!(
            "{config}:9: `originRequest.matchSNItoHost` in rule #1 ignored"
        )),
        "{stdout}"
    );
    assert_eq!(lines[4], "OK");

    // The same rules through both spellings of the command.
    for command in [&["tunnel", "ingress"][..], &["ingress"][..]] {
        let mut args = command.to_vec();
        args.extend(["--config", config, "rule", "https://a.example.com/x"]);
        let (ok, stdout, stderr) = adit(&args);
        assert!(ok, "{stderr}");
        assert!(
            stdout.contains("Matched rule #0\n\thostname: a.example.com\n"),
            "{stdout}"
        );
    }

    let typo = dir.path().join("typo.yml");
    std::fs::write(
        &typo,
        "ingress:\n  - service: https://localhost:8443\n    originRequest:\n      noTLSVerfy: true\n  - service: http_status:404\n",
    )
    .unwrap();
    let (ok, _, stderr) = adit(&[
        "tunnel",
        "ingress",
        "--config",
        typo.to_str().unwrap(),
        "validate",
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("typo.yml: line 4: unknown key `originRequest.noTLSVerfy` in rule #1: did you mean `noTLSVerify`?"),
        "{stderr}"
    );
}

#[test]
fn tunnel_ready_fails_when_nothing_answers() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (ok, _, stderr) = adit(&["tunnel", "ready", "--metrics", &format!("127.0.0.1:{port}")]);
    assert!(!ok);
    assert!(stderr.contains("cannot reach"), "{stderr}");
}

/// A well-formed token (no server needed to install a service).
fn a_token() -> String {
    use adit_core::{
        ids::{AccountId, TunnelId},
        token::{TunnelSecret, TunnelToken},
    };
    TunnelToken {
        account_id: AccountId::random(),
        tunnel_id: TunnelId::random(),
        secret: TunnelSecret::from_bytes(vec![7; 32]).unwrap(),
        endpoint: Some("edge.example.com:7844".into()),
        ca_pin: None,
    }
    .encode()
}

#[test]
fn service_install_writes_a_sandboxed_unit_and_a_private_token() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let folder = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let (units, config, bin) = (folder("units"), folder("etc"), folder("bin"));
    let layout = [
        "--unit-dir",
        &units,
        "--config-dir",
        &config,
        "--bin-dir",
        &bin,
        "--no-systemctl",
    ];
    let token = a_token();
    let mut args = vec!["service", "install", &token];
    args.extend(layout);
    let (ok, stdout, stderr) = adit(&args);
    assert!(ok, "{stdout}{stderr}");

    let unit = std::fs::read_to_string(dir.path().join("units/adit.service")).unwrap();
    assert!(!unit.contains(&token), "the token is in the unit");
    let binary = dir.path().join("bin/adit");
    for line in [
        "Type=notify".to_owned(),
        format!("LoadCredential=token:{config}/token"),
        format!(
            "ExecStart={} tunnel run --token-file %d/token",
            binary.display()
        ),
        "DynamicUser=yes".to_owned(),
    ] {
        assert!(unit.lines().any(|l| l == line), "{line} missing:\n{unit}");
    }
    let token_file = dir.path().join("etc/token");
    assert_eq!(std::fs::read_to_string(&token_file).unwrap(), token);
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // The installed binary is this one, and runs.
    let out = Command::new(&binary).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("adit "));

    // A bad token is refused before anything is written; so is nothing at all.
    let mut args = vec!["service", "install", "garbage"];
    args.extend(layout);
    let (ok, _, stderr) = adit(&args);
    assert!(!ok && stderr.contains("token"), "{stderr}");
    let empty = folder("empty");
    let mut args = vec!["service", "install"];
    args.extend(["--config-dir", &empty]);
    args.extend(["--unit-dir", &units, "--bin-dir", &bin, "--no-systemctl"]);
    let (ok, _, stderr) = adit(&args);
    assert!(!ok && stderr.contains("config.yml"), "{stderr}");

    // Without a token: the tunnel of config.yml, which the unit follows.
    std::fs::write(
        dir.path().join("etc/config.yml"),
        format!(
            "token: {}\ningress:\n  - service: http://localhost:8080\n",
            a_token()
        ),
    )
    .unwrap();
    let mut args = vec!["service", "install"];
    args.extend(layout);
    let (ok, stdout, stderr) = adit(&args);
    assert!(ok, "{stdout}{stderr}");
    let unit = std::fs::read_to_string(dir.path().join("units/adit.service")).unwrap();
    assert!(
        unit.contains(&format!(
            "tunnel --config {config}/config.yml run --token-file %d/token"
        )),
        "{unit}"
    );

    let mut args = vec!["service", "uninstall"];
    args.extend(layout);
    let (ok, stdout, stderr) = adit(&args);
    assert!(ok, "{stdout}{stderr}");
    assert!(!dir.path().join("units/adit.service").exists());
    assert!(!token_file.exists());
    assert!(dir.path().join("etc/config.yml").exists());
}

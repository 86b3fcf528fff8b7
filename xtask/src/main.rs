//! `cargo xtask`: the repository's own commands (the alias lives in `.cargo/config.toml`).
//!
//! * `cargo xtask run` builds `adit-server` and `adit`, starts a server whose data lives in
//!   `./.adit/server`, makes sure the tunnel `demo` exists and routes `hello.localhost`, runs
//!   a connector for it with the built-in `hello_world` origin, and stops both on Ctrl-C.
//!   Every step is idempotent, so it can be run again and again.
//! * `cargo xtask test` runs the workspace's tests, installing what they need when it is
//!   missing (OpenSSH, pebble and curl, Chromium and playwright-core, openapi-spec-validator).
//! * `cargo xtask ui` builds the dashboard's browser bundle into `target/site` (see `ui`);
//!   `run` and `test` build it first when it is stale.

use std::{
    ffi::OsString,
    fs,
    io::{Read, Write},
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs},
    path::{Path, PathBuf},
    process::{Child, Command, ExitCode, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::sleep,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

mod ui;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  run    build adit-server and adit, start a local server (data in ./.adit/server),
         create and route the `demo` tunnel to hello.localhost, run its connector with
         the hello_world origin; Ctrl-C stops everything
  test   cargo test --workspace --locked (extra arguments go to cargo test)
  ui     build the dashboard's browser bundle (wasm) into target/site/pkg, when
         anything it is made from changed; --release for the small build,
         --force to build even so

`run` and `test` build the bundle first when it is stale.

`run` honours the server's own environment: ADIT_EDGE_ADDR, ADIT_TUNNEL_ADDR,
ADIT_API_ADDR, ADIT_DATABASE_URL, ADIT_LOGLEVEL, ...
";

const TUNNEL: &str = "demo";
const HOSTNAME: &str = "hello.localhost";
const DEFAULT_EDGE_ADDR: &str = "0.0.0.0:8080";
const POSTGRES_ADDR: &str = "127.0.0.1:5432";
/// How long the server gets to answer on its API port, and the connector to serve.
const START_TIMEOUT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(100);

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let result = match args.next().as_deref() {
        Some("run") => run(),
        Some("test") => test(&args.collect::<Vec<_>>()),
        Some("ui") => workspace_root()
            .and_then(|root| ui::command(&root, &args.collect::<Vec<_>>()))
            .map(|()| ExitCode::SUCCESS),
        None | Some("help" | "-h" | "--help") => {
            print!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        Some(other) => {
            eprint!("xtask: unknown command {other:?}\n\n{USAGE}");
            Ok(ExitCode::from(2))
        }
    };
    result.unwrap_or_else(|e| {
        eprintln!("xtask: error: {e:#}");
        ExitCode::FAILURE
    })
}

fn step(message: &str) {
    println!("==> {message}");
}

fn workspace_root() -> Result<PathBuf> {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .context("xtask/ has no parent directory")
}

/// The cargo that started us (`cargo run` sets `CARGO`), else the one on PATH.
fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

fn cargo_status(root: &Path, args: &[&str]) -> Result<std::process::ExitStatus> {
    step(&format!("cargo {}", args.join(" ")));
    Command::new(cargo())
        .current_dir(root)
        .args(args)
        .status()
        .context("could not start cargo")
}

// ---------------------------------------------------------------- cargo xtask test

/// The SSH test drives real OpenSSH: install Debian's packages when they are missing.
fn ensure_openssh() -> Result<()> {
    let have = |path: &str| std::path::Path::new(path).exists();
    if have("/usr/sbin/sshd") && (have("/usr/bin/ssh") || have("/bin/ssh")) {
        return Ok(());
    }
    step("installing openssh-server and openssh-client (the SSH test runs real OpenSSH)");
    apt_install(&["openssh-server", "openssh-client"]).context(
        "could not install OpenSSH; as root run: apt-get install openssh-server openssh-client",
    )
}

/// The ACME tests order certificates from a real ACME server: Debian's pebble (with its
/// DNS stand-in, pebble-challtestsrv, from the same package), and check the result with curl.
fn ensure_pebble() -> Result<()> {
    let have = |path: &str| std::path::Path::new(path).exists();
    if have("/usr/bin/pebble") && have("/usr/bin/pebble-challtestsrv") && have("/usr/bin/curl") {
        return Ok(());
    }
    step("installing pebble and curl (the ACME tests order certificates from a real ACME server)");
    apt_install(&["pebble", "curl"])
        .context("could not install pebble; as root run: apt-get install pebble curl")
}

/// The OpenAPI test checks the API's description with `openapi-spec-validator` (PyPI):
/// install it for `python3` when it is missing.
fn ensure_openapi_validator() -> Result<()> {
    let quietly = |args: &[&str]| {
        Command::new("python3")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    };
    let has_validator = || quietly(&["-c", "import openapi_spec_validator"]);
    if has_validator() {
        return Ok(());
    }
    if !quietly(&["-m", "pip", "--version"]) {
        step("installing python3-pip (to install openapi-spec-validator for the OpenAPI test)");
        apt_install(&["python3-pip"])
            .context("could not install pip; as root run: apt-get install python3-pip")?;
    }
    step("pip install openapi-spec-validator (the OpenAPI test validates the API's description)");
    // Debian's own Python takes packages from pip only when told it may (PEP 668); a Python
    // of the user's (pyenv, a venv) takes them plainly, and may not know the flag.
    let installed = quietly(&["-m", "pip", "install", "--quiet", "openapi-spec-validator"])
        || Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--break-system-packages",
                "openapi-spec-validator",
            ])
            .status()
            .is_ok_and(|status| status.success());
    if !installed || !has_validator() {
        bail!(
            "could not install openapi-spec-validator; run: python3 -m pip install openapi-spec-validator"
        );
    }
    Ok(())
}

/// `apt-get install` of Debian packages (refreshing the package lists first).
fn apt_install(packages: &[&str]) -> Result<()> {
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
    };
    let mut install = vec!["install", "-y", "-qq"];
    install.extend_from_slice(packages);
    let status = apt(&["update", "-qq"]).and_then(|_| apt(&install))?;
    if !status.success() {
        bail!("apt-get install {} failed", packages.join(" "));
    }
    Ok(())
}

/// The dashboard's browser tests drive Debian's Chromium through playwright-core (from npm;
/// it never downloads a browser): install both when missing or stale.
fn ensure_browser_tools(root: &Path) -> Result<()> {
    if !Path::new("/usr/bin/chromium").exists() {
        step("installing chromium (the dashboard's browser tests run headless Chromium)");
        apt_install(&["chromium"])
            .context("could not install Chromium; as root run: apt-get install chromium")?;
    }
    let e2e = root.join("dashboard/e2e");
    let installed = e2e.join("node_modules/.package-lock.json");
    let fresh = match (
        modified(&installed),
        modified(&e2e.join("package-lock.json")),
    ) {
        (Some(installed), Some(wanted)) => installed >= wanted,
        _ => false,
    };
    if !fresh {
        step("npm ci in dashboard/e2e (playwright-core for the browser tests)");
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&e2e)
            .status()
            .context("could not run npm (install nodejs and npm)")?;
        if !status.success() {
            bail!("npm ci failed in {}", e2e.display());
        }
    }
    Ok(())
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn test(extra: &[String]) -> Result<ExitCode> {
    let root = workspace_root()?;
    ensure_openssh()?;
    ensure_pebble()?;
    ensure_browser_tools(&root)?;
    ensure_openapi_validator()?;
    // The end-to-end tests serve the bundle when it is there.
    ui::before(&root)?;
    if std::env::var_os("ADIT_TEST_DATABASE_URL").is_some() {
        step("ADIT_TEST_DATABASE_URL is set: the PostgreSQL tests run against it");
    } else if answers(POSTGRES_ADDR) {
        step(&format!(
            "PostgreSQL answers on {POSTGRES_ADDR}, but the PostgreSQL tests are skipped unless \
             ADIT_TEST_DATABASE_URL is set, e.g.\n    \
             ADIT_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo xtask test"
        ));
    } else {
        step("the PostgreSQL tests are skipped (set ADIT_TEST_DATABASE_URL to run them)");
    }
    let mut args = vec!["test", "--workspace", "--locked"];
    args.extend(extra.iter().map(String::as_str));
    let status = cargo_status(&root, &args)?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}

/// Whether something accepts TCP connections at `addr`.
fn answers(addr: &str) -> bool {
    addr.to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .is_some_and(|a| TcpStream::connect_timeout(&a, Duration::from_millis(300)).is_ok())
}

// ---------------------------------------------------------------- cargo xtask run

/// A child process that is killed (by its handle) when dropped, so an early error never
/// leaves a server behind.
struct Process {
    name: &'static str,
    child: Child,
}

impl Process {
    fn spawn(name: &'static str, command: &mut Command) -> Result<Self> {
        let child = command
            .spawn()
            .with_context(|| format!("could not start {name}"))?;
        Ok(Self { name, child })
    }

    /// `Some(description)` once the process has exited.
    fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(format!("unknown status: {e}")),
        }
    }

    fn stop(&mut self) {
        if self.exited().is_none() {
            println!("==> stopping {} (pid {})", self.name, self.child.id());
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs `adit tunnel …` against the repo-local server, never a server from `~/.adit`.
struct AditCli {
    bin: PathBuf,
    root: PathBuf,
    api_url: String,
    api_token: String,
}

impl AditCli {
    fn tunnel(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.bin);
        command
            .current_dir(&self.root)
            .arg("tunnel")
            .args(["--api-url", &self.api_url, "--api-token", &self.api_token])
            .args(args);
        command
    }

    /// Runs a management command and returns its standard output.
    fn output(&self, args: &[&str]) -> Result<String> {
        let out = self
            .tunnel(args)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("could not start {}", self.bin.display()))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let said = [stdout.trim(), stderr.trim()]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            bail!(
                "`adit tunnel {}` failed ({}): {said}",
                args.join(" "),
                out.status
            );
        }
        Ok(stdout)
    }
}

fn print_indented(text: &str) {
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        println!("    {line}");
    }
}

fn read_trimmed(path: &Path) -> Option<String> {
    fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("could not remove {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Writes a file only its owner can read (the tunnel token is a secret).
fn write_private(path: &Path, contents: &str) -> Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        if path.exists() {
            fs::set_permissions(path, fs::Permissions::from_mode(0o600))
                .with_context(|| format!("could not restrict {}", path.display()))?;
        }
    }
    options
        .open(path)
        .and_then(|mut f| f.write_all(contents.as_bytes()))
        .with_context(|| format!("could not write {}", path.display()))
}

/// Where a client reaches a listener bound to `addr` (0.0.0.0 means this machine).
fn dial_addr(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::from((Ipv4Addr::LOCALHOST, addr.port()))
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((Ipv6Addr::LOCALHOST, addr.port()))
        }
        _ => addr,
    }
}

/// Whether `adit tunnel list -o json` names a tunnel `name`. Tunnel names and the other
/// fields of a tunnel never hold whitespace, so comparing without it is exact enough.
fn lists_tunnel(list_json: &str, name: &str) -> bool {
    let compact: String = list_json.chars().filter(|c| !c.is_whitespace()).collect();
    compact.contains(&format!("\"name\":\"{name}\""))
}

/// The status code of `GET /` with `Host: host` at the edge, if it answered.
fn edge_status(edge: SocketAddr, host: &str) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&edge, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).ok()?;
    let line = String::from_utf8_lossy(&head[..n]).into_owned();
    line.split_whitespace().nth(1)?.parse().ok()
}

fn run() -> Result<ExitCode> {
    let root = workspace_root()?;
    // adit-server finds target/site, next to target/debug, by itself.
    ui::before(&root)?;
    let status = cargo_status(&root, &["build", "-p", "adit-server", "-p", "adit-agent"])?;
    if !status.success() {
        bail!("the build failed ({status})");
    }
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let bin = root.join(target).join("debug");
    let state = root.join(".adit");
    let data_dir = state.join("server");
    fs::create_dir_all(&data_dir)
        .with_context(|| format!("could not create {}", data_dir.display()))?;
    let edge_addr: SocketAddr = std::env::var("ADIT_EDGE_ADDR")
        .unwrap_or_else(|_| DEFAULT_EDGE_ADDR.to_owned())
        .parse()
        .context("ADIT_EDGE_ADDR is not an ip:port address")?;
    let edge = dial_addr(edge_addr);

    // From here on Ctrl-C (SIGINT) and SIGTERM only raise this flag; a second one exits at once.
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(signal, 1, interrupted.clone())?;
        signal_hook::flag::register(signal, interrupted.clone())?;
    }
    let check_interrupt = || -> Result<()> {
        if interrupted.load(Ordering::SeqCst) {
            bail!("interrupted");
        }
        Ok(())
    };

    // The server writes api-url on every start: without the old one, its appearance means
    // this start has bound its listeners.
    let api_url_file = data_dir.join("api-url");
    remove_if_exists(&api_url_file)?;
    // The demo routes hello.localhost: the default account serves the zone `localhost`.
    step("starting adit-server --data-dir .adit/server --zone localhost");
    let mut server = Process::spawn(
        "adit-server",
        Command::new(bin.join("adit-server"))
            .current_dir(&root)
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--zone", "localhost"])
            .stdin(Stdio::null()),
    )?;

    let deadline = Instant::now() + START_TIMEOUT;
    let api_url = loop {
        check_interrupt()?;
        if let Some(status) = server.exited() {
            bail!("adit-server exited ({status}) before its API answered; its log above says why");
        }
        let ready = read_trimmed(&api_url_file).filter(|url| {
            url.strip_prefix("http://")
                .and_then(|addr| addr.parse::<SocketAddr>().ok())
                .is_some_and(|addr| TcpStream::connect_timeout(&dial_addr(addr), POLL).is_ok())
        });
        if let Some(url) = ready {
            break url;
        }
        if Instant::now() > deadline {
            bail!("adit-server's API did not answer within {START_TIMEOUT:?}");
        }
        sleep(POLL);
    };
    let token_path = data_dir.join("admin-token");
    let api_token = read_trimmed(&token_path).with_context(|| {
        format!(
            "{} is missing; the server writes it only when it makes its first API token \
             (remove .adit/server to start afresh)",
            token_path.display()
        )
    })?;
    let cli = AditCli {
        bin: bin.join("adit"),
        root: root.clone(),
        api_url: api_url.clone(),
        api_token,
    };
    step(&format!("API answers at {api_url}"));

    let list = cli.output(&["list", "--output", "json"])?;
    if lists_tunnel(&list, TUNNEL) {
        step(&format!("tunnel {TUNNEL} exists"));
    } else {
        step(&format!("adit tunnel create {TUNNEL}"));
        // The credentials file belongs to the tunnel created now; an older one is stale.
        let credentials = state.join(format!("{TUNNEL}-credentials.json"));
        remove_if_exists(&credentials)?;
        let credentials = credentials.to_string_lossy().into_owned();
        print_indented(&cli.output(&["create", TUNNEL, "--cred-file", &credentials])?);
    }
    check_interrupt()?;

    step(&format!("adit tunnel route dns {TUNNEL} {HOSTNAME}"));
    // A route the tunnel already has is not an error: the CLI says "already configured".
    match cli.output(&["route", "dns", TUNNEL, HOSTNAME]) {
        Ok(out) => print_indented(&out),
        Err(e) if format!("{e:#}").contains("already configured") => {
            print_indented(&format!("{e:#}"))
        }
        Err(e) => return Err(e),
    }
    check_interrupt()?;

    let token_file = state.join(format!("{TUNNEL}.token"));
    let token = cli.output(&["token", TUNNEL])?;
    write_private(&token_file, token.trim())?;
    step(&format!(
        "adit tunnel token {TUNNEL} > .adit/{TUNNEL}.token"
    ));

    // An explicit config file keeps a `~/.adit/config.yml` with its own ingress rules (which
    // would clash with --url) out of the demo.
    let config = state.join(format!("{TUNNEL}.yml"));
    fs::write(
        &config,
        format!(
            "# Written by `cargo xtask run`: the token comes from --token-file, the origin from --url.\ntunnel: {TUNNEL}\n"
        ),
    )
    .with_context(|| format!("could not write {}", config.display()))?;
    step(&format!(
        "adit tunnel run --token-file .adit/{TUNNEL}.token --url hello_world"
    ));
    let mut connector = Process::spawn(
        "adit tunnel run",
        // `run` needs no API access: the token is all a connector has.
        Command::new(&cli.bin)
            .current_dir(&root)
            .env_remove("ADIT_TUNNEL_TOKEN")
            .arg("tunnel")
            .arg("--config")
            .arg(&config)
            .arg("run")
            .arg("--token-file")
            .arg(&token_file)
            .args(["--url", "hello_world"])
            .stdin(Stdio::null()),
    )?;

    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        check_interrupt()?;
        for process in [&mut server, &mut connector] {
            if let Some(status) = process.exited() {
                bail!("{} exited ({status}); its log above says why", process.name);
            }
        }
        if edge_status(edge, HOSTNAME) == Some(200) {
            break;
        }
        if Instant::now() > deadline {
            bail!("{HOSTNAME} did not answer 200 at the edge {edge} within {START_TIMEOUT:?}");
        }
        sleep(POLL * 2);
    }

    let dashboard = api_url.trim_end_matches('/');
    let adit = bin.join("adit");
    let adit = adit.strip_prefix(&root).unwrap_or(&adit).display();
    println!(
        "\n\
         ==> Adit is running; the tunnel {TUNNEL} serves {HOSTNAME} through the edge at {edge}.\n\n\
         \x20   curl -H 'Host: {HOSTNAME}' http://{edge}/\n\
         \x20   (browsers resolve *.localhost to this machine: http://{HOSTNAME}:{port}/)\n\n\
         \x20   dashboard:        {dashboard}/  (log in as admin@localhost: the password is in\n\
         \x20                     .adit/server/initial-admin-password; a new one: {server_bin} --data-dir .adit/server admin reset-password --email admin@localhost)\n\
         \x20   admin API token:  {token}\n\
         \x20   the CLI:          {adit} tunnel --api-url {api_url} --api-token \"$(cat .adit/server/admin-token)\" info {TUNNEL}\n\n\
         \x20   Press Ctrl-C to stop.\n",
        port = edge.port(),
        token = token_path.display(),
        server_bin = {
            let server_bin = bin.join("adit-server");
            server_bin
                .strip_prefix(&root)
                .unwrap_or(&server_bin)
                .display()
                .to_string()
        },
    );

    loop {
        if interrupted.load(Ordering::SeqCst) {
            println!();
            connector.stop();
            server.stop();
            step("stopped");
            return Ok(ExitCode::SUCCESS);
        }
        for process in [&mut server, &mut connector] {
            if let Some(status) = process.exited() {
                // A Ctrl-C in the terminal reaches the children too; the flag says so.
                sleep(POLL);
                if interrupted.load(Ordering::SeqCst) {
                    break;
                }
                bail!("{} exited ({status}); its log above says why", process.name);
            }
        }
        sleep(POLL * 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_tunnel_by_name_in_pretty_json() {
        let json = "[\n  {\n    \"id\": \"e8374aee\",\n    \"name\": \"demo\",\n    \"routes\": []\n  }\n]\n";
        assert!(lists_tunnel(json, "demo"));
        assert!(!lists_tunnel(json, "dem"));
        assert!(!lists_tunnel("[]", "demo"));
    }

    #[test]
    fn unspecified_addresses_are_dialled_on_loopback() {
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(dial_addr(any), "127.0.0.1:8080".parse().unwrap());
        let v6: SocketAddr = "[::]:8080".parse().unwrap();
        assert_eq!(dial_addr(v6), "[::1]:8080".parse().unwrap());
        let set: SocketAddr = "10.0.0.1:80".parse().unwrap();
        assert_eq!(dial_addr(set), set);
    }
}

//! Arbitrary bytes as the connector's `config.yml`: YAML parsing, then ingress
//! validation, then rule matching. Checks what validation promises: the last rule is a
//! catch-all (so every request finds a rule), a rule finds its own hostname, and a
//! service prints in a form that parses back to the same service.

#![no_main]

use std::path::Path;

use adit_agent::config::LoadedConfig;
use adit_core::ingress::Ingress;
use libfuzzer_sys::fuzz_target;

const HOSTS: &[&str] = &[
    "",
    "example.com",
    "app.example.com",
    "APP.Example.COM.:8443",
    "a.b.c.example.com",
    "localhost:8080",
    "[::1]:443",
    "127.0.0.1",
    "xn--bcher-kva.example",
    "ü.example",
];

const PATHS: &[&str] = &[
    "",
    "/",
    "/api/v1/tunnels?page=2",
    "/static/app.css",
    "/%ff/\u{e9}",
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(loaded) = LoadedConfig::parse(Path::new("config.yml"), text) else {
        return;
    };
    // `--url` next to the file: either refused (rules present) or a single rule.
    let _ = loaded.ingress(Some("http://localhost:8080"));
    let Ok(Some(ingress)) = loaded.ingress(None) else {
        return;
    };
    check(&ingress);
});

fn check(ingress: &Ingress) {
    let rules = ingress.rules();
    let last = rules.last().expect("validated ingress is never empty");
    assert!(last.is_catch_all(), "the last rule must be a catch-all");

    for host in HOSTS {
        for path in PATHS {
            let (index, _) = ingress.find(host, path);
            assert!(index < rules.len(), "no rule matched {host:?} {path:?}");
        }
    }

    for (index, rule) in rules.iter().enumerate() {
        // A rule without a path finds its own hostname (or an earlier rule does).
        if let (Some(pattern), None) = (&rule.hostname, &rule.path) {
            let host = match pattern.as_str().strip_prefix("*.") {
                Some(suffix) => format!("x.{suffix}"),
                None => pattern.as_str().to_owned(),
            };
            let (found, _) = ingress.find(&host, "/");
            assert!(
                found <= index,
                "rule {index} ({pattern}) does not match {host}"
            );
            let (found, _) = ingress.find(&format!("{}:443", host.to_uppercase()), "/");
            assert!(
                found <= index,
                "rule {index} ({pattern}) ignores case or port badly"
            );
        }
        // The printed service is what `adit ingress rule` shows; it must mean the same.
        let printed = rule.service.to_string();
        let again = Ingress::single(&printed)
            .unwrap_or_else(|e| panic!("{printed:?} (rule {index}) does not parse back: {e}"));
        assert_eq!(again.rules()[0].service, rule.service, "{printed:?}");
    }
}

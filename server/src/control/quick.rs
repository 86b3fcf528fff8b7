//! Quick tunnels: `adit tunnel --url …` with no account gets an ephemeral tunnel on a
//! random, readable hostname under the operator's quick-tunnel domain (as trycloudflare's
//! `four-random-words.trycloudflare.com`).

use std::time::Duration;

use adit_core::hostname::HostPattern;
use rand::seq::IndexedRandom;

/// What the operator enabled with `--quick-tunnel-domain`.
#[derive(Debug, Clone)]
pub struct QuickTunnels {
    /// Hostnames are made under this domain.
    pub domain: HostPattern,
    /// How many quick tunnels one client address may hold at once.
    pub per_client_limit: i64,
    /// How long a quick tunnel outlives its last connection (a reconnect within it keeps it).
    pub grace: Duration,
}

const ADJECTIVES: &[&str] = &[
    "amber", "brave", "calm", "clever", "crisp", "daring", "eager", "fancy", "gentle", "golden",
    "happy", "jolly", "kind", "lively", "lucky", "mellow", "merry", "nimble", "proud", "quiet",
    "rapid", "royal", "shiny", "silent", "smart", "solid", "sunny", "swift", "tidy", "vivid",
    "warm", "witty",
];
const NOUNS: &[&str] = &[
    "anchor", "badger", "beacon", "canyon", "cedar", "comet", "delta", "ember", "falcon", "forest",
    "galaxy", "harbor", "island", "lagoon", "lantern", "maple", "meadow", "nebula", "orchid",
    "otter", "pebble", "pine", "quartz", "raven", "river", "summit", "thunder", "tiger", "valley",
    "willow", "yonder", "zephyr",
];

/// `adjective-noun-noun-adjective.<domain>`: about a million names, easy to read aloud.
pub(crate) fn random_hostname(domain: &str) -> String {
    let mut rng = rand::rng();
    let pick = |list: &[&'static str], rng: &mut rand::rngs::ThreadRng| -> &'static str {
        list.choose(rng).copied().unwrap_or("adit")
    };
    format!(
        "{}-{}-{}-{}.{domain}",
        pick(ADJECTIVES, &mut rng),
        pick(NOUNS, &mut rng),
        pick(NOUNS, &mut rng),
        pick(ADJECTIVES, &mut rng)
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn hostnames_are_valid_and_under_the_domain() {
        for _ in 0..100 {
            let name = super::random_hostname("quick.example.com");
            assert!(name.ends_with(".quick.example.com"), "{name}");
            adit_core::hostname::HostPattern::parse(&name).unwrap();
            assert_eq!(name.split('.').next().unwrap().split('-').count(), 4);
        }
    }
}

//! Arbitrary input to the tunnel token parser. A parsed token must encode to a token that
//! parses to the same value, and encoding must be stable.
//!
//! The first byte picks how the rest is used, so the fuzzer can work on the JSON inside
//! a token without having to discover base64 first: `0` (mod 3) the rest is the token
//! text, `1` the rest is JSON to wrap in standard base64, `2` in URL-safe base64.

#![no_main]

use adit_core::token::TunnelToken;
use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE},
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    let text = match mode % 3 {
        0 => String::from_utf8_lossy(rest).into_owned(),
        1 => STANDARD.encode(rest),
        _ => URL_SAFE.encode(rest),
    };
    let Ok(token) = TunnelToken::parse(&text) else {
        return;
    };
    let encoded = token.encode();
    let again = TunnelToken::parse(&encoded)
        .unwrap_or_else(|e| panic!("an encoded token does not parse: {e}: {encoded}"));
    assert_eq!(again, token, "the token changed in a round trip");
    assert_eq!(again.encode(), encoded, "encoding is not stable");
    assert!(!format!("{token:?}").contains(&token.secret.to_base64()));
});

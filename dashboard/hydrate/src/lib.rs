//! The dashboard's browser bundle: `cargo xtask ui` builds this crate for
//! `wasm32-unknown-unknown` and wasm-bindgen turns it into `pkg/dash.js` and
//! `pkg/dash_bg.wasm`, which every page loads to hydrate itself. All the code lives in
//! `adit-dashboard` (feature `hydrate`); on other targets this crate is empty.
#![cfg(target_arch = "wasm32")]

use wasm_bindgen::prelude::*;

/// Hydrates the page from the data the server wrote into it; an error rejects the
/// promise, which the browser's console shows.
#[wasm_bindgen]
pub fn hydrate() -> Result<(), JsValue> {
    console_error_panic_hook::set_once();
    adit_dashboard::hydrate().map_err(|e| JsValue::from_str(&e.to_string()))
}

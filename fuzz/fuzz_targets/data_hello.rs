//! Arbitrary bytes as the first frame of a data connection, read the way the tunnel
//! listener reads it: `read_frame::<DataHello>` with `MAX_HELLO_LEN`, from an in-memory
//! reader. Checks the length limit, that exactly one frame is consumed, and that an
//! accepted hello writes and reads back the same.

#![no_main]

use std::sync::LazyLock;

use adit_core::wire::{self, DataHello, MAX_HELLO_LEN};
use adit_transport::{
    Error,
    frame::{read_frame, write_frame},
};
use libfuzzer_sys::fuzz_target;
use tokio::runtime::{Builder, Runtime};

static RUNTIME: LazyLock<Runtime> = LazyLock::new(|| {
    Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime builds")
});

fuzz_target!(|data: &[u8]| {
    RUNTIME.block_on(check(data));
});

async fn check(data: &[u8]) {
    let declared = data
        .get(..4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));

    let mut reader = data;
    match read_frame::<_, DataHello>(&mut reader, MAX_HELLO_LEN).await {
        Ok(hello) => {
            let len = declared.expect("a frame was read, so it had a length");
            assert!(len <= MAX_HELLO_LEN, "accepted a {len}-byte hello");
            assert_eq!(
                reader.len(),
                data.len() - 4 - len as usize,
                "read more or less than one frame"
            );
            let _ = wire::negotiate_version(&hello.versions);
            // Re-encoding may grow the frame (a compact UUID gains its hyphens), so the
            // round trip reads back without the hello limit.
            let mut buf = Vec::new();
            write_frame(&mut buf, &hello)
                .await
                .expect("writes to a Vec");
            let again: DataHello = read_frame(&mut buf.as_slice(), u32::MAX)
                .await
                .expect("a written hello reads back");
            assert_eq!(
                serde_json::to_value(&again).ok(),
                serde_json::to_value(&hello).ok()
            );
        }
        Err(Error::FrameTooLarge { len, max }) => {
            assert_eq!(max, MAX_HELLO_LEN);
            assert_eq!(Some(len), declared);
            assert!(len > max);
        }
        Err(_) => {}
    }

    // Any limit is enforced before the body is read: use the last byte as a small one.
    if let Some(&small) = data.last() {
        let max = u32::from(small);
        let mut reader = data;
        match read_frame::<_, serde_json::Value>(&mut reader, max).await {
            Ok(_) => assert!(declared.is_some_and(|len| len <= max)),
            Err(Error::FrameTooLarge { len, .. }) => assert!(len > max),
            Err(_) => {}
        }
    }
}

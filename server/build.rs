// The same link order as the connector's, for this crate's `link-order.txt`.
include!("../agent/build.rs");

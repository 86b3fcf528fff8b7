//! Generated gRPC code for `adit.v1` (see `proto/adit/v1/adit.proto`).

#[allow(unreachable_pub, clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("adit.v1");
}

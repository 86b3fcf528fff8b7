//! What people and programs call on the API listener: REST (`api`), gRPC (`grpc`), the
//! dashboard's pages and bundle (`pages`, `ui`), the connector download. The only layer
//! that turns errors into HTTP and gRPC answers.
//!
//! Rule: web/ may use every layer below it (control/, identity/, edge/, tunnel/, trust/,
//! observe/, storage/, ground), and none uses web/.

pub mod api;
pub(crate) mod download;
pub(crate) mod grpc;
pub(crate) mod pages;
pub(crate) mod ui;

//! Building blocks shared by the pages.

pub(crate) mod chart;
pub(crate) mod copy_id;
pub(crate) mod shell;
pub(crate) mod status_badge;
pub(crate) mod tabs;

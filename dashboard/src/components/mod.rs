//! Building blocks shared by the pages.

pub(crate) mod chart;
pub(crate) mod confirm;
pub(crate) mod copy_id;
pub(crate) mod dialog;
pub(crate) mod field_error;
pub(crate) mod moment;
pub(crate) mod secret;
pub(crate) mod shell;
pub(crate) mod status_badge;
pub(crate) mod table;
pub(crate) mod tabs;
pub(crate) mod tag;

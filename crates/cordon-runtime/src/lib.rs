//! Maps, helpers, kfuncs and the four runtime mechanisms.

pub mod maps;

pub use maps::{Map, MapDef, MapError, MapHandle, MapType};

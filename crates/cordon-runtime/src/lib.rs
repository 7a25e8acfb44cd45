//! Maps, helpers, kfuncs and the four runtime mechanisms.

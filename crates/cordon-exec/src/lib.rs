//! Execution engines. See the crate README section in the workspace README.

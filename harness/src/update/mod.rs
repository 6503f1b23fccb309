//! Firmware update integrity (groundwork): corrupted and hostile variants of a maker's
//! valid signed image, made without I/O so they can be unit-tested and fuzzed. Serving them
//! from the bench and the update scenarios build on this.

pub mod variants;

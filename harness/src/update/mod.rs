//! Firmware update integrity: the profile's `update:` section (how the device is offered an
//! update, the maker's images and their layout), the image set a run serves (the valid
//! image, its corrupted variants, the maker's older and other-model images) and the
//! update bench that serves them and records every transfer.

pub mod bench;
pub mod crypto;
pub mod variants;

//! Swift-compatible rings: reading and writing `.ring.gz` files (v1 and v2),
//! placing accounts, containers and objects on devices exactly as Swift
//! does, and building rings (`swift-ring-builder`).

pub mod builder;
pub mod builder_cli;
#[cfg(feature = "db")]
mod db_ring;
pub mod device;
pub mod io;
pub mod locations;
pub mod pyjson;
pub mod ring;
pub mod ring_data;

pub use device::Device;
pub use ring::{Handoffs, Ring, RingTable};
pub use ring_data::{RingData, RingError};

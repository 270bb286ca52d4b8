//! Plain data of the call recording model and its validation. No I/O here: the store keeps
//! these values, the service decides with them, and both HTTP layers parse into them.

pub mod org;
pub mod platform;
pub mod properties;
pub mod reachability;
pub mod text;
pub mod user;

pub use org::{Group, GroupRef, Tenant};
pub use platform::{
    MediaStream, NewPlatform, Platform, PlatformChange, SchemaVersion, TransportProtocol,
};
pub use properties::{Properties, PropertiesChange};
pub use reachability::{ProbeOutcome, Reachability, ReachabilityState};
pub use user::{Level, NewUser, Principal, User};

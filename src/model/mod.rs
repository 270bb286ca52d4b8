//! Plain data of the call recording model and its validation. No I/O here: the store keeps
//! these values, the service decides with them, and both HTTP layers parse into them.
//!
//! # The rules of the model
//!
//! These are the rules every layer relies on; the service (`crate::service`) enforces the ones
//! that need the stored state, this module the ones a value alone decides.
//!
//! **Call recording platform** ([`Platform`]). `name` is the key: 1–80 characters, no control
//! or format characters, no white space at either end, and it cannot be changed. `netAddress`
//! (1–80) is an IPv4/IPv6 literal or a host or domain name of RFC 1123 labels. `port` is
//! optional, 1–65535. `mediaStream` is `Dual` or `Single`; `transportProtocol` `UDP`, `TCP` or
//! `Unspecified`; `schemaVersion` `1.0`, `2.0` or `3.0`; `supportVideoRecording` a boolean;
//! `description` optional, 1–80. An add names every field but `port` and `description`; a
//! modify any subset, where REST's `"port": 0` and `"description": ""` (GraphQL's `null`)
//! remove the value. An unset optional field is absent from REST JSON and `null` in GraphQL.
//!
//! **The system default.** The first platform added becomes the default. Making another
//! platform the default moves it there; nothing unsets it (`default: false` on the default is
//! refused with 18 INVALID_OPERATION, and changes nothing on any other platform). The default
//! cannot be deleted (21 NOT_DELETED) unless it is the only platform and no group uses it; then
//! there is no default. At every moment: no platforms ⇔ no default; otherwise exactly one
//! default, and it exists.
//!
//! **Tenants, groups and usage** ([`org`]). Tenants (1–30 character ids) hold groups (1–30,
//! unique within the tenant). A group may be assigned one platform, which must exist when the
//! assignment is made. A platform's usage is the groups assigned to it, kept as an index in the
//! same atomic write as the assignment, so listing it costs the number of groups using it. A
//! platform in use cannot be deleted (21); deleting a group removes its assignment; a tenant
//! with groups or users, and a group with users, are not deleted (21).
//!
//! **System properties** ([`Properties`]). `continueCallAfterRecordingFailure` and
//! `continueCallAfterVideoRecordingFailure` are booleans (true in a new store);
//! `refreshPeriodSeconds` 10–300 (60) and `maxConsecutiveFailures` 1–10 (1), deprecated but
//! served; `maxResponseWaitTimeMilliseconds` 50–10000 (3000). The ranges are the constants of
//! [`properties`], from which every other statement of them is derived.
//!
//! **Levels** ([`Level`]): End User 0, Group Admin 8, Tenant Admin 12, System Admin 16.
//! Listing platforms needs a Group Admin or above; every other platform and property operation
//! a System Admin. A Tenant Admin acts within its tenant, a Group Admin within its group.
//! Missing or bad credentials are 401; a valid caller below the level needed is 403.
//!
//! **Atomic and durable.** Each change's checks and writes are one atomic step, so concurrent
//! clients can never make two defaults, delete a platform in use or leave usage out of step;
//! a change is acknowledged only once it is on disk.

pub mod limits;
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

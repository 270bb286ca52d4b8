//! Credentials: password hashing and its bound, signed tokens, and the failed-login throttle.

mod password;
mod throttle;
mod tokens;

pub use password::{PasswordChecks, hash_password, verify_password};
pub use throttle::{Attempt, LoginThrottle, Outcome, Throttle};
pub use tokens::{Claims, TokenKind, Tokens};

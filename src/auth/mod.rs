//! Credentials: password hashing, signed tokens, and the failed-login throttle.

mod password;
mod throttle;
mod tokens;

pub use password::{hash_password, verify_password};
pub use throttle::Throttle;
pub use tokens::{Claims, TokenKind, Tokens};

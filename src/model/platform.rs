//! The call recording platform: a recording server that calls are forked to.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use super::text;
use crate::error::{Error, Result};

pub const NAME_MAX: usize = crate::limit!(NAME_MAX);
pub const NET_ADDRESS_MAX: usize = crate::limit!(NET_ADDRESS_MAX);
pub const DESCRIPTION_MAX: usize = crate::limit!(DESCRIPTION_MAX);
pub const PORT_MIN: u16 = crate::limit!(PORT_MIN);
pub const PORT_MAX: u16 = crate::limit!(PORT_MAX);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MediaStream {
    Dual,
    Single,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TransportProtocol {
    #[serde(rename = "UDP")]
    Udp,
    #[serde(rename = "TCP")]
    Tcp,
    Unspecified,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SchemaVersion {
    #[serde(rename = "1.0")]
    V1_0,
    #[serde(rename = "2.0")]
    V2_0,
    #[serde(rename = "3.0")]
    V3_0,
}

/// A stored platform. Its serde form is the documented list entry, which is also how the
/// store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Platform {
    pub name: String,
    /// An IPv4 or IPv6 address, a host name or a domain.
    pub net_address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    pub media_stream: MediaStream,
    pub transport_protocol: TransportProtocol,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub schema_version: SchemaVersion,
    pub support_video_recording: bool,
}

/// An add request, as parsed by either API; numbers stay wide so the range check is the
/// model's, with the model's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPlatform {
    pub name: String,
    pub net_address: String,
    pub port: Option<i64>,
    pub media_stream: MediaStream,
    pub transport_protocol: TransportProtocol,
    pub description: Option<String>,
    pub schema_version: SchemaVersion,
    pub support_video_recording: bool,
}

/// A modify request. `None` leaves a field unchanged; for the optional fields `Some(None)`
/// removes the value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlatformChange {
    pub make_default: Option<bool>,
    pub net_address: Option<String>,
    pub port: Option<Option<i64>>,
    pub media_stream: Option<MediaStream>,
    pub transport_protocol: Option<TransportProtocol>,
    pub description: Option<Option<String>>,
    pub schema_version: Option<SchemaVersion>,
    pub support_video_recording: Option<bool>,
}

pub fn check_name(name: &str) -> Result<()> {
    text::check_name("name", name, NAME_MAX)
}

/// An IPv4 or IPv6 literal, or a host or domain name of RFC 1123 labels.
pub fn check_net_address(address: &str) -> Result<()> {
    const FIELD: &str = "netAddress";
    text::check(FIELD, address, NET_ADDRESS_MAX, true)?;
    if address.parse::<Ipv4Addr>().is_ok() || address.parse::<Ipv6Addr>().is_ok() {
        return Ok(());
    }
    let bad = || {
        Error::invalid(
            FIELD,
            format!("netAddress '{address}' is neither an IP address nor a host name"),
        )
    };
    let labels: Vec<&str> = address.split('.').collect();
    let label_ok = |label: &&str| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if !labels.iter().all(label_ok) {
        return Err(bad());
    }
    // All-numeric dotted names are meant as IPv4 addresses; one that did not parse as such
    // (e.g. 10.0.0.256) is a mistake, not a host name.
    if labels.iter().all(|l| l.bytes().all(|b| b.is_ascii_digit())) {
        return Err(bad());
    }
    Ok(())
}

pub fn check_port(port: i64) -> Result<u16> {
    u16::try_from(port)
        .ok()
        .filter(|p| (PORT_MIN..=PORT_MAX).contains(p))
        .ok_or_else(|| {
            Error::invalid(
                "port",
                format!("port must be {PORT_MIN}-{PORT_MAX} (got {port})"),
            )
        })
}

pub fn check_description(description: &str) -> Result<()> {
    text::check("description", description, DESCRIPTION_MAX, false)
}

impl NewPlatform {
    pub fn validate(self) -> Result<Platform> {
        check_name(&self.name)?;
        check_net_address(&self.net_address)?;
        let port = self.port.map(check_port).transpose()?;
        if let Some(d) = &self.description {
            check_description(d)?;
        }
        Ok(Platform {
            name: self.name,
            net_address: self.net_address,
            port,
            media_stream: self.media_stream,
            transport_protocol: self.transport_protocol,
            description: self.description,
            schema_version: self.schema_version,
            support_video_recording: self.support_video_recording,
        })
    }
}

impl Platform {
    /// This platform with the change's fields applied, or the first invalid field.
    pub fn changed(&self, change: &PlatformChange) -> Result<Platform> {
        let mut next = self.clone();
        if let Some(address) = &change.net_address {
            check_net_address(address)?;
            next.net_address = address.clone();
        }
        if let Some(port) = change.port {
            next.port = port.map(check_port).transpose()?;
        }
        if let Some(description) = &change.description {
            if let Some(d) = description {
                check_description(d)?;
            }
            next.description = description.clone();
        }
        if let Some(v) = change.media_stream {
            next.media_stream = v;
        }
        if let Some(v) = change.transport_protocol {
            next.transport_protocol = v;
        }
        if let Some(v) = change.schema_version {
            next.schema_version = v;
        }
        if let Some(v) = change.support_video_recording {
            next.support_video_recording = v;
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_address_accepts_ip_literals_and_host_names() {
        for ok in [
            "10.0.32.55",
            "::1",
            "fe80::1",
            "rec1",
            "rec-1.example.com",
            "3com.net",
        ] {
            assert!(check_net_address(ok).is_ok(), "{ok}");
        }
        for bad in [
            "10.0.0.256",
            "1.2.3",
            "-rec.example",
            "rec..example",
            "rec_1",
            "a b",
            "",
            "example.com.",
        ] {
            assert_eq!(
                check_net_address(bad).unwrap_err().field(),
                Some("netAddress"),
                "{bad}"
            );
        }
    }

    #[test]
    fn port_range() {
        assert_eq!(check_port(1).unwrap(), 1);
        assert_eq!(check_port(65535).unwrap(), 65535);
        assert!(check_port(0).is_err());
        assert!(check_port(65536).is_err());
        assert!(check_port(-1).is_err());
    }
}

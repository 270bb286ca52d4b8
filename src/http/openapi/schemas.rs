//! How the model's values look on the REST wire, for the OpenAPI document only: the model
//! itself carries no OpenAPI attributes. A test checks that each of these serializes exactly
//! as the model value it describes.

// Only the document and that test use them: nothing builds these values to serve.
#![cfg_attr(not(test), allow(dead_code))]

use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub enum MediaStream {
    Dual,
    Single,
}

#[derive(Serialize, ToSchema)]
pub enum TransportProtocol {
    #[serde(rename = "UDP")]
    Udp,
    #[serde(rename = "TCP")]
    Tcp,
    Unspecified,
}

#[derive(Serialize, ToSchema)]
pub enum SchemaVersion {
    #[serde(rename = "1.0")]
    V1_0,
    #[serde(rename = "2.0")]
    V2_0,
    #[serde(rename = "3.0")]
    V3_0,
}

/// A platform as the list holds it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Platform {
    pub name: String,
    /// An IPv4 or IPv6 address, a host name or a domain.
    pub net_address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub port: Option<u16>,
    pub media_stream: MediaStream,
    pub transport_protocol: TransportProtocol,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub description: Option<String>,
    pub schema_version: SchemaVersion,
    pub support_video_recording: bool,
}

/// The system-wide call recording properties.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Properties {
    pub continue_call_after_recording_failure: bool,
    /// Deprecated, still served.
    pub refresh_period_seconds: u32,
    /// Deprecated, still served.
    pub max_consecutive_failures: u32,
    pub max_response_wait_time_milliseconds: u32,
    pub continue_call_after_video_recording_failure: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model;

    fn platform(p: &model::Platform) -> Platform {
        Platform {
            name: p.name.clone(),
            net_address: p.net_address.clone(),
            port: p.port,
            media_stream: match p.media_stream {
                model::MediaStream::Dual => MediaStream::Dual,
                model::MediaStream::Single => MediaStream::Single,
            },
            transport_protocol: match p.transport_protocol {
                model::TransportProtocol::Udp => TransportProtocol::Udp,
                model::TransportProtocol::Tcp => TransportProtocol::Tcp,
                model::TransportProtocol::Unspecified => TransportProtocol::Unspecified,
            },
            description: p.description.clone(),
            schema_version: match p.schema_version {
                model::SchemaVersion::V1_0 => SchemaVersion::V1_0,
                model::SchemaVersion::V2_0 => SchemaVersion::V2_0,
                model::SchemaVersion::V3_0 => SchemaVersion::V3_0,
            },
            support_video_recording: p.support_video_recording,
        }
    }

    #[test]
    fn the_described_shapes_are_the_models() {
        use model::{MediaStream as M, SchemaVersion as S, TransportProtocol as T};
        let mut seen = 0;
        for (m, t, s, port, description) in [
            (M::Dual, T::Udp, S::V1_0, Some(5060), Some("d")),
            (M::Single, T::Tcp, S::V2_0, None, None),
            (M::Dual, T::Unspecified, S::V3_0, Some(1), None),
        ] {
            let p = model::Platform {
                name: "A".into(),
                net_address: "10.0.0.1".into(),
                port,
                media_stream: m,
                transport_protocol: t,
                description: description.map(Into::into),
                schema_version: s,
                support_video_recording: port.is_some(),
            };
            assert_eq!(
                serde_json::to_value(&p).unwrap(),
                serde_json::to_value(platform(&p)).unwrap()
            );
            seen += 1;
        }
        assert_eq!(seen, 3);
        let p = model::Properties::default();
        let described = Properties {
            continue_call_after_recording_failure: p.continue_call_after_recording_failure,
            refresh_period_seconds: p.refresh_period_seconds,
            max_consecutive_failures: p.max_consecutive_failures,
            max_response_wait_time_milliseconds: p.max_response_wait_time_milliseconds,
            continue_call_after_video_recording_failure: p
                .continue_call_after_video_recording_failure,
        };
        assert_eq!(
            serde_json::to_value(p).unwrap(),
            serde_json::to_value(described).unwrap()
        );
    }
}

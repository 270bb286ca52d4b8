//! The document's ranges come from the model ([`crate::model::limits`]), not from attributes
//! that could drift from the checks: every property named like a ranged field of the model
//! gets the model's bounds. Applied to the finished document, once the routes have added
//! their schemas.

use utoipa::Modify;
use utoipa::openapi::schema::Object;
use utoipa::openapi::{OpenApi as Document, RefOr, Schema};

use crate::model::limits::{Bound, FieldRange, range_of};

/// Schemas whose properties use these words for something else: an error's `name`, and the
/// login's free text (a wrong username or password is a 401, whatever its length).
const NOT_THE_MODEL: &[&str] = &["ErrorItem", "LoginBody"];

/// REST body fields where `0` or `""` removes the value: their lower bound is 0.
const ZERO_REMOVES: &[(&str, &str)] = &[
    ("AddPlatformBody", "port"),
    ("ModifyPlatformBody", "port"),
    ("ModifyPlatformBody", "description"),
];

pub struct ModelRanges;

impl Modify for ModelRanges {
    fn modify(&self, doc: &mut Document) {
        let Some(components) = doc.components.as_mut() else {
            return;
        };
        for (schema_name, schema) in components.schemas.iter_mut() {
            if NOT_THE_MODEL.contains(&schema_name.as_str()) {
                continue;
            }
            let RefOr::T(Schema::Object(object)) = schema else {
                continue;
            };
            for (name, property) in object.properties.iter_mut() {
                if let (Some(range), RefOr::T(Schema::Object(property))) =
                    (range_of(name), property)
                {
                    let zero_removes =
                        ZERO_REMOVES.contains(&(schema_name.as_str(), name.as_str()));
                    bound(property, range, zero_removes);
                }
            }
        }
    }
}

fn bound(property: &mut Object, range: &FieldRange, zero_removes: bool) {
    let min = if zero_removes { 0 } else { range.min };
    match range.bound {
        Bound::Characters => {
            property.min_length = usize::try_from(min).ok();
            property.max_length = usize::try_from(range.max).ok();
        }
        Bound::Value => {
            property.minimum = Some(utoipa::Number::from(min));
            property.maximum = Some(utoipa::Number::from(range.max));
        }
    }
}

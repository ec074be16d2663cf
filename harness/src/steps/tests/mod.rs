//! The format with these verbs: parsing, validation with located errors, liveness,
//! capabilities, rendering and the schema. They live here, not in `scenario/`, because they
//! need real verbs to say anything; `scenario/` stays generic.

mod capabilities;
mod channels;
mod faults;
mod format;
mod inspect;
mod liveness;
mod render;
mod routes;
mod schema;
mod support;

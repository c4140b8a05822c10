//! Pure types and rules: no I/O, no clock reads (time is passed in).

pub mod agent;
pub mod approval;
pub mod audit;
pub mod ca;
pub mod enrolment;
pub mod fingerprint;
pub mod ids;
pub mod policy;
pub mod verify;

pub use fingerprint::{Fingerprint, IssuerSerial, PresentedFingerprint, Sha1Fingerprint};
pub use ids::{AgentId, CaId, HostRequestId};

//! The three switches operators flip at run time through `PUT B/config`.

use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Off = audit mode: decisions are computed and logged but every certificate passes.
    pub enforcement_enabled: bool,
    /// On: a certificate that is not enrolled is refused.
    pub reject_unknown_certs: bool,
    /// On: an unknown certificate that chains to a trusted CA is enrolled on first sight.
    pub auto_enroll: bool,
    pub updated_at: OffsetDateTime,
}

impl Policy {
    pub fn defaults(now: OffsetDateTime) -> Self {
        Self {
            enforcement_enabled: true,
            reject_unknown_certs: true,
            auto_enroll: false,
            updated_at: now,
        }
    }
}

/// A partial update: fields left `None` keep their value.
#[derive(Debug, Clone, Copy, Default)]
pub struct PolicyChange {
    pub enforcement_enabled: Option<bool>,
    pub reject_unknown_certs: Option<bool>,
    pub auto_enroll: Option<bool>,
}

impl PolicyChange {
    pub fn apply(self, current: Policy, now: OffsetDateTime) -> Policy {
        Policy {
            enforcement_enabled: self
                .enforcement_enabled
                .unwrap_or(current.enforcement_enabled),
            reject_unknown_certs: self
                .reject_unknown_certs
                .unwrap_or(current.reject_unknown_certs),
            auto_enroll: self.auto_enroll.unwrap_or(current.auto_enroll),
            updated_at: now,
        }
    }
}

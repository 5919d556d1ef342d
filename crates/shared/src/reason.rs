//! Why a delivery attempt failed, and what class of failure that is. The class decides what
//! automation may do: retry later the same day, reattempt within the attempt budget, or stop and
//! hand the case to a human.

use serde::{Deserialize, Serialize};

/// How a failure may be handled.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// A passing obstacle; try again later. Does not use up the attempt budget.
    Transient,
    /// The stop can still succeed: reattempt, reschedule or reroute within the attempt budget.
    Recoverable,
    /// No automatic retry; a human decides with full context.
    Terminal,
}

/// The reason code a driver picks for a failed attempt.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    /// Road closed, vehicle problem, severe weather: the courier could not get there now.
    ObstacleEnRoute,
    /// The courier ran out of shift time before the stop.
    OutOfTime,
    /// Nobody answered at the door.
    CustomerAbsent,
    /// Gate, door code or concierge refused entry.
    NoAccess,
    /// The parcel locker had no free compartment.
    LockerFull,
    /// The customer asked for another day.
    CustomerRequestedReschedule,
    /// The address does not exist or cannot be found.
    AddressInvalid,
    /// The destination is on a banned list.
    BannedDestination,
    /// Customs, age check or another compliance hold.
    ComplianceHold,
    /// The recipient refused the parcel.
    RefusedByRecipient,
    /// The parcel is damaged and must not be handed over.
    ParcelDamaged,
}

impl FailureReason {
    pub const ALL: [FailureReason; 11] = [
        Self::ObstacleEnRoute,
        Self::OutOfTime,
        Self::CustomerAbsent,
        Self::NoAccess,
        Self::LockerFull,
        Self::CustomerRequestedReschedule,
        Self::AddressInvalid,
        Self::BannedDestination,
        Self::ComplianceHold,
        Self::RefusedByRecipient,
        Self::ParcelDamaged,
    ];

    pub fn class(self) -> FailureClass {
        use FailureReason::*;
        match self {
            ObstacleEnRoute | OutOfTime => FailureClass::Transient,
            CustomerAbsent | NoAccess | LockerFull | CustomerRequestedReschedule => {
                FailureClass::Recoverable
            }
            AddressInvalid | BannedDestination | ComplianceHold | RefusedByRecipient
            | ParcelDamaged => FailureClass::Terminal,
        }
    }

    /// The stable snake_case code, as used in metrics labels and on the wire.
    pub fn code(self) -> &'static str {
        use FailureReason::*;
        match self {
            ObstacleEnRoute => "obstacle_en_route",
            OutOfTime => "out_of_time",
            CustomerAbsent => "customer_absent",
            NoAccess => "no_access",
            LockerFull => "locker_full",
            CustomerRequestedReschedule => "customer_requested_reschedule",
            AddressInvalid => "address_invalid",
            BannedDestination => "banned_destination",
            ComplianceHold => "compliance_hold",
            RefusedByRecipient => "refused_by_recipient",
            ParcelDamaged => "parcel_damaged",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_matches_serde_name_for_every_reason() {
        for r in FailureReason::ALL {
            assert_eq!(
                serde_json::to_string(&r).unwrap(),
                format!("\"{}\"", r.code())
            );
        }
    }

    #[test]
    fn brief_classes_hold() {
        assert_eq!(
            FailureReason::CustomerAbsent.class(),
            FailureClass::Recoverable
        );
        assert_eq!(FailureReason::LockerFull.class(), FailureClass::Recoverable);
        assert_eq!(
            FailureReason::AddressInvalid.class(),
            FailureClass::Terminal
        );
        assert_eq!(
            FailureReason::ComplianceHold.class(),
            FailureClass::Terminal
        );
        assert_eq!(
            FailureReason::ObstacleEnRoute.class(),
            FailureClass::Transient
        );
    }
}

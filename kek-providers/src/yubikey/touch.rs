//! Whether to ask the user to touch the card before an ECDH. The card says nothing while it
//! waits for a touch (it blinks), so a user looking at a terminal needs a line on stderr.
//! The slot's touch policy comes from GET METADATA (firmware 5.3 and later); without it there
//! is no notice, since a wrong "touch the YubiKey" would be worse than none.

use std::time::{Duration, Instant};

use yubikey::TouchPolicy;

/// How long a YubiKey keeps a touch for a slot whose policy is `cached`.
const TOUCH_CACHE: Duration = Duration::from_secs(15);

/// A slot's touch policy, as far as the card told it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Touch {
    /// The card reported no metadata (older firmware, or not a YubiKey).
    Unknown,
    /// No touch needed.
    Never,
    /// A touch for every operation.
    Always,
    /// A touch that the card keeps for 15 seconds.
    Cached,
}

impl Touch {
    /// From the slot's metadata; `None` when the card reported none.
    pub(super) fn from_policy(policy: Option<TouchPolicy>) -> Self {
        match policy {
            None => Self::Unknown,
            Some(TouchPolicy::Never) => Self::Never,
            Some(TouchPolicy::Always) => Self::Always,
            Some(TouchPolicy::Cached) => Self::Cached,
            // Metadata names the effective policy; "default" would be a card bug: say nothing.
            Some(TouchPolicy::Default) => Self::Unknown,
        }
    }

    /// Whether the next operation, at `now`, will wait for a touch; `last_touch` is when the
    /// last operation that needed one succeeded.
    pub(super) fn will_wait(self, last_touch: Option<Instant>, now: Instant) -> bool {
        match self {
            Self::Unknown | Self::Never => false,
            Self::Always => true,
            Self::Cached => last_touch
                .is_none_or(|touched| now.saturating_duration_since(touched) >= TOUCH_CACHE),
        }
    }

    /// The policy's name for `kek info` (`None`: not reported).
    pub(super) fn name(self) -> Option<&'static str> {
        match self {
            Self::Unknown => None,
            Self::Never => Some("never"),
            Self::Always => Some("always"),
            Self::Cached => Some("cached (15 s)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_metadata_or_never_means_no_notice() {
        let now = Instant::now();
        for touch in [
            Touch::from_policy(None),
            Touch::from_policy(Some(TouchPolicy::Never)),
            Touch::from_policy(Some(TouchPolicy::Default)),
        ] {
            assert!(!touch.will_wait(None, now), "{touch:?}");
            assert!(!touch.will_wait(Some(now), now), "{touch:?}");
        }
    }

    #[test]
    fn always_means_a_notice_every_time() {
        let touch = Touch::from_policy(Some(TouchPolicy::Always));
        let now = Instant::now();
        assert!(touch.will_wait(None, now));
        assert!(touch.will_wait(Some(now), now));
    }

    #[test]
    fn cached_means_a_notice_only_once_the_touch_expired() {
        let touch = Touch::from_policy(Some(TouchPolicy::Cached));
        let touched = Instant::now();
        assert!(touch.will_wait(None, touched), "never touched yet");
        assert!(!touch.will_wait(Some(touched), touched));
        assert!(!touch.will_wait(Some(touched), touched + Duration::from_secs(14)));
        assert!(touch.will_wait(Some(touched), touched + TOUCH_CACHE));
        assert!(touch.will_wait(Some(touched), touched + Duration::from_secs(60)));
    }

    #[test]
    fn names_for_info() {
        assert_eq!(Touch::Unknown.name(), None);
        assert_eq!(Touch::Always.name(), Some("always"));
        assert_eq!(Touch::Cached.name(), Some("cached (15 s)"));
    }
}

//! Finding the slot whose token the URI names (RFC 7512 token, slot and library attributes).

use cryptoki::context::Pkcs11;
use cryptoki::slot::Slot;

use super::call::call_error;
use super::spec::Pkcs11KekSpec;
use crate::Error;

/// The one slot whose token matches every token, slot and library attribute of the URI.
pub(super) fn find(context: &Pkcs11, spec: &Pkcs11KekSpec) -> Result<Slot, Error> {
    let uri = &spec.uri;
    let library = context.get_library_info().map_err(call_error)?;
    let library_matches = matches(&uri.library_manufacturer, library.manufacturer_id())
        && matches(&uri.library_description, library.library_description())
        && uri.library_version.is_none_or(|v| {
            let have = library.library_version();
            v.major == have.major() && v.minor == have.minor()
        });
    let mut present = Vec::new();
    let mut found = Vec::new();
    for slot in context
        .get_slots_with_initialized_token()
        .map_err(call_error)?
    {
        let token = context.get_token_info(slot).map_err(call_error)?;
        let info = context.get_slot_info(slot).map_err(call_error)?;
        present.push(format!("{:?}", token.label()));
        let token_matches = matches(&uri.token, token.label())
            && matches(&uri.serial, token.serial_number())
            && matches(&uri.manufacturer, token.manufacturer_id())
            && matches(&uri.model, token.model())
            && matches(&uri.slot_description, info.slot_description())
            && matches(&uri.slot_manufacturer, info.manufacturer_id())
            && uri.slot_id.is_none_or(|id| id == slot.id());
        if library_matches && token_matches {
            found.push(slot);
        }
    }
    let problem = match found.as_slice() {
        [slot] => return Ok(*slot),
        [] => format!("no PKCS#11 token matches {:?}", spec.token_name()),
        many => format!(
            "{} PKCS#11 tokens match {}; add serial= or slot-id= to pick one",
            many.len(),
            spec.token_name()
        ),
    };
    let (path, _) = spec.module();
    let softhsm = path.is_some_and(|p| p.to_string_lossy().contains("softhsm"));
    Err(Error::Pkcs11Token {
        problem,
        present: if present.is_empty() {
            "none".into()
        } else {
            present.join(", ")
        },
        conf_hint: if softhsm {
            " and that SOFTHSM2_CONF names the configuration whose tokendir holds the token"
        } else {
            ""
        },
    })
}

/// A URI attribute matches a (space-trimmed) token field when absent or equal.
fn matches(wanted: &Option<String>, have: &str) -> bool {
    wanted
        .as_deref()
        .is_none_or(|wanted| wanted == have.trim_end())
}

//! ERC-4337 user operations: what the transaction rules cannot see in the priced batch.
//! A DELEGATECALL runs the target's code as the account (every asset in it): refused
//! unless `evm.delegatecall` names the target. Call data that does not decode for the
//! named account kind is refused as unpriced under a rule that caps value or tokens
//! (the batch rules then price nothing it could do). Everything else, inner call by
//! inner call, gas and fees, is `evm::check` on [`UserOpSubject::priced`].

use super::rules::EvmRule;
use super::{Refuse, UserOpSubject, UNPRICED_CALL};

pub(super) fn check(rule: &EvmRule, op: &UserOpSubject) -> Result<(), Refuse> {
    for target in &op.delegatecalls {
        if !rule.delegatecall.contains(target) {
            return Err(format!(
                "the user operation DELEGATECALLs {target:#x}, which runs that code as the account; refused unless evm.delegatecall lists it"
            )
            .into());
        }
    }
    if let Some(why) = &op.undecoded {
        if rule.caps_anything() {
            return Err(Refuse::builtin(
                UNPRICED_CALL,
                format!(
                    "the user operation's callData cannot be priced ({why}); under a rule that caps value or tokens it is refused"
                ),
            ));
        }
    }
    Ok(())
}

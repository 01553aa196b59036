//! The route table: the single list of what the signing API serves.
//!
//! The router matches requests against [`ROUTES`] and nothing else, and the OpenAPI
//! document is checked against the same table by a test, so a route cannot exist
//! without being documented (or the other way round).

use hyper::Method;

use crate::config::Operation;

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteId {
    /// `GET /v1/whoami`.
    Whoami,
    /// `GET /v1/openapi.json`.
    OpenApi,
    /// `GET /v1/wallets`.
    ListWallets,
    /// `GET /v1/wallets/{walletId}`.
    GetWallet,
    /// A sign route.
    Sign(Operation),
    /// `POST /v1/rpc` and `POST /v1/rpc/{chainId}`: the Ethereum JSON-RPC face.
    Rpc,
}

/// One row of the table.
#[derive(Debug, Clone)]
pub struct Route {
    /// HTTP method.
    pub method: Method,
    /// Path template (`{walletId}` matches one well-formed wallet id, `{chainId}` one chain
    /// id in decimal or 0x hex).
    pub template: &'static str,
    /// What it does.
    pub id: RouteId,
}

/// Every route the API serves.
pub const ROUTES: &[Route] = &[
    Route {
        method: Method::GET,
        template: "/v1/whoami",
        id: RouteId::Whoami,
    },
    Route {
        method: Method::GET,
        template: "/v1/openapi.json",
        id: RouteId::OpenApi,
    },
    Route {
        method: Method::GET,
        template: "/v1/wallets",
        id: RouteId::ListWallets,
    },
    Route {
        method: Method::GET,
        template: "/v1/wallets/{walletId}",
        id: RouteId::GetWallet,
    },
    Route {
        method: Method::POST,
        template: "/v1/wallets/{walletId}/evm/message",
        id: RouteId::Sign(Operation::EvmMessage),
    },
    Route {
        method: Method::POST,
        template: "/v1/wallets/{walletId}/evm/typed-data",
        id: RouteId::Sign(Operation::EvmTypedData),
    },
    Route {
        method: Method::POST,
        template: "/v1/wallets/{walletId}/evm/transaction",
        id: RouteId::Sign(Operation::EvmTransaction),
    },
    Route {
        method: Method::POST,
        template: "/v1/wallets/{walletId}/evm/hash",
        id: RouteId::Sign(Operation::EvmHash),
    },
    Route {
        method: Method::POST,
        template: "/v1/wallets/{walletId}/evm/authorization",
        id: RouteId::Sign(Operation::EvmAuthorization),
    },
    Route {
        method: Method::POST,
        template: "/v1/wallets/{walletId}/evm/user-operation",
        id: RouteId::Sign(Operation::EvmUserOperation),
    },
    Route {
        method: Method::POST,
        template: "/v1/wallets/{walletId}/solana/message",
        id: RouteId::Sign(Operation::SolanaMessage),
    },
    Route {
        method: Method::POST,
        template: "/v1/wallets/{walletId}/solana/transaction",
        id: RouteId::Sign(Operation::SolanaTransaction),
    },
    Route {
        method: Method::POST,
        template: "/v1/rpc",
        id: RouteId::Rpc,
    },
    Route {
        method: Method::POST,
        template: "/v1/rpc/{chainId}",
        id: RouteId::Rpc,
    },
];

/// Longest wallet id accepted in a path; longer ones cannot exist.
pub const MAX_WALLET_ID: usize = crate::store::wallets::MAX_ID_LEN;

/// The outcome of matching a request line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matched<'p> {
    /// A route, with the wallet id when the template has one.
    Route {
        /// Route.
        id: RouteId,
        /// Template (the metrics label).
        template: &'static str,
        /// `{walletId}`.
        wallet_id: Option<&'p str>,
        /// `{chainId}`.
        chain_id: Option<u64>,
    },
    /// The path exists with other methods.
    MethodNotAllowed {
        /// Methods it has.
        allow: Vec<&'static str>,
    },
    /// No such path.
    NotFound,
}

/// The parameters a template took from a path.
type Params<'p> = (Option<&'p str>, Option<u64>);

fn match_template<'p>(template: &str, path: &'p str) -> Option<Params<'p>> {
    let mut wallet = None;
    let mut chain = None;
    let mut t = template.split('/');
    let mut p = path.split('/');
    loop {
        match (t.next(), p.next()) {
            (None, None) => return Some((wallet, chain)),
            (Some("{chainId}"), Some(seg)) => chain = Some(super::rpc::parse_chain_segment(seg)?),
            (Some("{walletId}"), Some(seg)) => {
                // the same rule the webhook applies before storing a wallet id
                if !crate::store::wallets::is_valid_id(seg) {
                    return None;
                }
                wallet = Some(seg);
            }
            (Some(a), Some(b)) if a == b => {}
            _ => return None,
        }
    }
}

/// Matches `method` and `path` (without the query) against [`ROUTES`].
pub fn route<'p>(method: &Method, path: &'p str) -> Matched<'p> {
    let mut allow = Vec::new();
    for r in ROUTES {
        if let Some((wallet_id, chain_id)) = match_template(r.template, path) {
            if r.method == *method {
                return Matched::Route {
                    id: r.id,
                    template: r.template,
                    wallet_id,
                    chain_id,
                };
            }
            allow.push(r.method.as_str());
        }
    }
    if allow.is_empty() {
        Matched::NotFound
    } else {
        Matched::MethodNotAllowed { allow }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_templates_exactly() {
        assert_eq!(
            route(&Method::POST, "/v1/wallets/abc-1/evm/message"),
            Matched::Route {
                id: RouteId::Sign(Operation::EvmMessage),
                template: "/v1/wallets/{walletId}/evm/message",
                wallet_id: Some("abc-1"),
                chain_id: None,
            }
        );
        assert_eq!(
            route(&Method::POST, "/v1/rpc/0x89"),
            Matched::Route {
                id: RouteId::Rpc,
                template: "/v1/rpc/{chainId}",
                wallet_id: None,
                chain_id: Some(137),
            }
        );
        assert!(matches!(
            route(&Method::POST, "/v1/rpc"),
            Matched::Route {
                id: RouteId::Rpc,
                chain_id: None,
                ..
            }
        ));
        assert_eq!(route(&Method::POST, "/v1/rpc/0"), Matched::NotFound);
        assert_eq!(route(&Method::POST, "/v1/rpc/mainnet"), Matched::NotFound);
        assert_eq!(
            route(&Method::GET, "/v1/rpc/1"),
            Matched::MethodNotAllowed {
                allow: vec!["POST"]
            }
        );
        assert_eq!(
            route(&Method::GET, "/v1/wallets/abc-1/evm/message"),
            Matched::MethodNotAllowed {
                allow: vec!["POST"]
            }
        );
        assert_eq!(route(&Method::GET, "/v1/wallets/"), Matched::NotFound);
        assert_eq!(route(&Method::GET, "/v1/wallets/a/b"), Matched::NotFound);
        assert_eq!(route(&Method::GET, "/v1/wallets/a%2Fb"), Matched::NotFound);
        assert_eq!(route(&Method::GET, "/v1/wallets/.."), Matched::NotFound);
        assert!(matches!(
            route(&Method::GET, "/v1/wallets/a.b:c_d-1"),
            Matched::Route {
                wallet_id: Some("a.b:c_d-1"),
                ..
            }
        ));
        assert_eq!(route(&Method::GET, "/v1/whoami/"), Matched::NotFound);
        assert!(matches!(
            route(&Method::GET, "/v1/wallets"),
            Matched::Route {
                id: RouteId::ListWallets,
                ..
            }
        ));
    }
}

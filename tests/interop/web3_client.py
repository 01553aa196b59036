"""web3.py against keyward's JSON-RPC face over mTLS: eth.sign, eth.sign_typed_data,
eth.sign_transaction, each verified with eth-account's own recovery.

Run by tests/interop.rs (scripts/interop) with KW_URL, KW_CA, KW_CERT, KW_KEY, KW_ADDRESS,
KW_CHAIN_ID in the environment.
"""

import os

from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from web3 import Web3
from web3.exceptions import Web3RPCError


def env(k):
    v = os.environ.get(k)
    if not v:
        raise SystemExit(f"{k} is not set")
    return v


# per request, not on a requests.Session: a session's `verify` loses to REQUESTS_CA_BUNDLE
# when that is set in the environment
tls = {"cert": (env("KW_CERT"), env("KW_KEY")), "verify": env("KW_CA")}
# compat=geth: web3.py reads eth_signTransaction's answer as geth's {raw, tx}
w3 = Web3(Web3.HTTPProvider(env("KW_URL") + "?compat=geth", request_kwargs=tls))
address = Web3.to_checksum_address(env("KW_ADDRESS"))
chain_id = int(env("KW_CHAIN_ID"))
checks = 0


def ok(what):
    global checks
    checks += 1
    print(f"ok - {what}", flush=True)


assert w3.eth.chain_id == chain_id, w3.eth.chain_id
assert address in w3.eth.accounts, w3.eth.accounts
ok("web3.py: eth.chain_id and eth.accounts")

text = "hello from web3.py"
sig = w3.eth.sign(address, text=text)
assert Account.recover_message(encode_defunct(text=text), signature=sig) == address
ok("web3.py: eth.sign, Account.recover_message recovers the wallet")

typed = {
    "types": {
        "EIP712Domain": [
            {"name": "name", "type": "string"},
            {"name": "version", "type": "string"},
            {"name": "chainId", "type": "uint256"},
            {"name": "verifyingContract", "type": "address"},
        ],
        "Person": [{"name": "name", "type": "string"}, {"name": "wallet", "type": "address"}],
        "Mail": [
            {"name": "from", "type": "Person"},
            {"name": "to", "type": "Person"},
            {"name": "contents", "type": "string"},
        ],
    },
    "primaryType": "Mail",
    "domain": {
        "name": "Ether Mail",
        "version": "1",
        "chainId": chain_id,
        "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC",
    },
    "message": {
        "from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
        "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
        "contents": "Hello, Bob!",
    },
}
tsig = w3.eth.sign_typed_data(address, typed)
assert Account.recover_message(encode_typed_data(full_message=typed), signature=tsig) == address
ok("web3.py: eth.sign_typed_data, Account.recover_message(encode_typed_data) recovers the wallet")

signed = w3.eth.sign_transaction(
    {
        "from": address,
        "to": "0x3535353535353535353535353535353535353535",
        "value": 1,
        "nonce": 3000,
        "gas": 21000,
        "maxFeePerGas": 30_000_000_000,
        "maxPriorityFeePerGas": 1_000_000_000,
        "chainId": chain_id,
    }
)
assert Account.recover_transaction(signed.raw) == address
assert signed.tx["nonce"] == 3000, signed.tx
ok("web3.py: eth.sign_transaction, Account.recover_transaction recovers the wallet")

try:
    w3.eth.sign(address, text="x" * 100)
    raise SystemExit("a message over the policy's max_len was signed")
except Web3RPCError as e:
    assert e.rpc_response["error"]["code"] == 4001, e.rpc_response
    assert e.rpc_response["error"]["data"]["code"] == "policy_denied", e.rpc_response
ok("web3.py: a policy refusal is error 4001 with data.code policy_denied")

print(f"web3.py: {checks} checks ok")

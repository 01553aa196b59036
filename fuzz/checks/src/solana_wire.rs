//! Solana wire format written here, independently of `keyward::chains::solana`: a
//! reference parser with the validator's structural rules, an encoder, an instruction
//! classifier, and a generator of messages for the structure-aware targets.

use arbitrary::Arbitrary;

pub(crate) type Key = [u8; 32];

/// Packet size a transaction must fit.
pub(crate) const PACKET: usize = 1232;
/// Most accounts (static + loaded) a message may address.
pub(crate) const MAX_ACCOUNTS: usize = 256;
pub(crate) const SYSTEM: Key = [0; 32];
pub(crate) const TOKEN: Key = decode58("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA");
pub(crate) const TOKEN_2022: Key = decode58("TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb");
pub(crate) const COMPUTE_BUDGET: Key = decode58("ComputeBudget111111111111111111111111111111");
pub(crate) const MAX_COMPUTE_UNIT_LIMIT: u64 = 1_400_000;

/// Base58 at compile time (program ids), written out so no crate is trusted for it.
const fn decode58(s: &str) -> Key {
    const ALPHABET: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    let s = s.as_bytes();
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < s.len() {
        let mut digit = 0;
        while ALPHABET[digit] != s[i] {
            digit += 1;
        }
        let mut carry = digit as u32;
        let mut j = 32;
        while j > 0 {
            j -= 1;
            carry += out[j] as u32 * 58;
            out[j] = (carry & 0xff) as u8;
            carry >>= 8;
        }
        i += 1;
    }
    out
}

pub(crate) fn shortvec(n: usize) -> Vec<u8> {
    let mut n = n;
    let mut out = Vec::new();
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return out;
        }
        out.push(b | 0x80);
    }
}

/// A message as its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Msg {
    pub version: Option<u8>,
    pub header: [u8; 3],
    pub keys: Vec<Key>,
    pub blockhash: Key,
    /// (program id index, account indices, data)
    pub ixs: Vec<(u8, Vec<u8>, Vec<u8>)>,
    /// (table, writable indices, readonly indices)
    pub lookups: Vec<(Key, Vec<u8>, Vec<u8>)>,
}

impl Msg {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(v) = self.version {
            out.push(0x80 | v);
        }
        out.extend_from_slice(&self.header);
        out.extend(shortvec(self.keys.len()));
        self.keys.iter().for_each(|k| out.extend_from_slice(k));
        out.extend_from_slice(&self.blockhash);
        out.extend(shortvec(self.ixs.len()));
        for (p, a, d) in &self.ixs {
            out.push(*p);
            out.extend(shortvec(a.len()));
            out.extend_from_slice(a);
            out.extend(shortvec(d.len()));
            out.extend_from_slice(d);
        }
        if self.version.is_some() {
            out.extend(shortvec(self.lookups.len()));
            for (k, w, r) in &self.lookups {
                out.extend_from_slice(k);
                out.extend(shortvec(w.len()));
                out.extend_from_slice(w);
                out.extend(shortvec(r.len()));
                out.extend_from_slice(r);
            }
        }
        out
    }

    /// A transaction: `signatures` zeroed signature slots, then the message.
    pub fn transaction(&self, signatures: usize) -> Vec<u8> {
        let mut out = shortvec(signatures);
        out.resize(out.len() + 64 * signatures, 0);
        out.extend(self.encode());
        out
    }

    pub fn total_accounts(&self) -> usize {
        self.keys.len()
            + self
                .lookups
                .iter()
                .map(|(_, w, r)| w.len() + r.len())
                .sum::<usize>()
    }

    /// The validator's structural ("sanitize") rules, as keyward documents them.
    pub fn valid(&self) -> bool {
        let [required, ro_signed, ro_unsigned] = self.header.map(usize::from);
        let keys = self.keys.len();
        let total = self.total_accounts();
        required >= 1
            && required <= keys
            && ro_signed < required
            && ro_unsigned <= keys - required
            && self
                .lookups
                .iter()
                .all(|(_, w, r)| !w.is_empty() || !r.is_empty())
            && total <= MAX_ACCOUNTS
            && (0..keys).all(|i| !self.keys[..i].contains(&self.keys[i]))
            && self.ixs.iter().all(|(p, a, _)| {
                (1..keys).contains(&usize::from(*p)) && a.iter().all(|&x| usize::from(x) < total)
            })
    }

    pub fn account(&self, ix: usize, position: usize) -> Option<Option<Key>> {
        let i = usize::from(*self.ixs[ix].1.get(position)?);
        Some(self.keys.get(i).copied())
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let end = self.at.checked_add(n)?;
        let out = self.b.get(self.at..end)?;
        self.at = end;
        Some(out)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn key(&mut self) -> Option<Key> {
        self.take(32)?.try_into().ok()
    }
    /// compact-u16: at most 3 bytes, at most u16::MAX, and only its shortest spelling.
    fn shortvec(&mut self) -> Option<usize> {
        let start = self.at;
        let mut value = 0usize;
        for nth in 0..3 {
            let b = self.u8()?;
            value |= usize::from(b & 0x7f) << (7 * nth);
            if b & 0x80 == 0 {
                let ok = value <= 0xffff && shortvec(value) == self.b[start..self.at];
                return ok.then_some(value);
            }
        }
        None
    }
    fn vec(&mut self) -> Option<Vec<u8>> {
        let n = self.shortvec()?;
        Some(self.take(n)?.to_vec())
    }
}

fn read_msg(c: &mut Cursor<'_>) -> Option<Msg> {
    let first = *c.b.get(c.at)?;
    let version = if first & 0x80 != 0 {
        c.at += 1;
        if first != 0x80 {
            return None;
        }
        Some(0)
    } else {
        None
    };
    let header = [c.u8()?, c.u8()?, c.u8()?];
    let n = c.shortvec()?;
    let keys = (0..n).map(|_| c.key()).collect::<Option<Vec<_>>>()?;
    let blockhash = c.key()?;
    let n = c.shortvec()?;
    let ixs = (0..n)
        .map(|_| Some((c.u8()?, c.vec()?, c.vec()?)))
        .collect::<Option<Vec<_>>>()?;
    let lookups = if version.is_some() {
        let n = c.shortvec()?;
        (0..n)
            .map(|_| Some((c.key()?, c.vec()?, c.vec()?)))
            .collect::<Option<Vec<_>>>()?
    } else {
        Vec::new()
    };
    let m = Msg {
        version,
        header,
        keys,
        blockhash,
        ixs,
        lookups,
    };
    m.valid().then_some(m)
}

/// A bare message. `strict`: within a packet once signed, nothing after it.
pub(crate) fn parse_message(b: &[u8], strict: bool) -> Option<Msg> {
    let mut c = Cursor { b, at: 0 };
    let m = read_msg(&mut c)?;
    if strict {
        let n = usize::from(m.header[0]);
        if c.at != b.len() || shortvec(n).len() + 64 * n + b.len() > PACKET {
            return None;
        }
    }
    Some(m)
}

/// A transaction: its signatures and message. `strict`: within a packet, nothing after.
pub(crate) fn parse_transaction(b: &[u8], strict: bool) -> Option<(Vec<[u8; 64]>, Msg, usize)> {
    if strict && b.len() > PACKET {
        return None;
    }
    let mut c = Cursor { b, at: 0 };
    let n = c.shortvec()?;
    let sigs = (0..n)
        .map(|_| c.take(64).map(|s| s.try_into().unwrap()))
        .collect::<Option<Vec<[u8; 64]>>>()?;
    let m = read_msg(&mut c)?;
    if (strict && c.at != b.len()) || n != usize::from(m.header[0]) {
        return None;
    }
    Some((sigs, m, c.at))
}

/// The SDK's `uses_durable_nonce`: the first instruction calls the System Program and its
/// data begins with `AdvanceNonceAccount`'s tag, 4 as a little-endian `u32`.
pub(crate) fn durable_nonce(m: &Msg) -> bool {
    m.ixs.first().is_some_and(|(p, _, d)| {
        m.keys.get(usize::from(*p)) == Some(&SYSTEM) && d.get(..4) == Some(&[4, 0, 0, 0])
    })
}

/// Lower bounds of the compute-unit limit a current runtime gives a message that requests
/// none: Agave's rule before SIMD-0170 (200,000 per instruction of any program but Compute
/// Budget) and SIMD-0170's floor for Compute Budget instructions (3,000 each, builtins).
/// Both capped at 1,400,000.
pub(crate) fn default_limit_floors(m: &Msg) -> [u64; 2] {
    let budget = m
        .ixs
        .iter()
        .filter(|(p, _, _)| m.keys.get(usize::from(*p)) == Some(&COMPUTE_BUDGET))
        .count() as u64;
    let others = m.ixs.len() as u64 - budget;
    [others * 200_000, budget * 3_000].map(|x| x.min(MAX_COMPUTE_UNIT_LIMIT))
}

/// The priority fee a current runtime charges at least, in lamports, for a message whose
/// Compute Budget instructions decode (the first of each kind counts; a duplicate makes
/// the runtime refuse the message, `None`): `ceil(price × limit / 10^6)`.
pub(crate) fn priority_fee_floor(m: &Msg) -> Option<u128> {
    let (mut price, mut limit) = (None::<u64>, None::<u64>);
    for (p, _, d) in &m.ixs {
        if m.keys.get(usize::from(*p)) != Some(&COMPUTE_BUDGET) {
            continue;
        }
        match d.first() {
            Some(3) if price.is_none() => {
                price = Some(u64::from_le_bytes(d.get(1..9)?.try_into().ok()?))
            }
            Some(2) if limit.is_none() => {
                limit = Some(u64::from(u32::from_le_bytes(d.get(1..5)?.try_into().ok()?)));
            }
            Some(1) => {}
            _ => return None,
        }
    }
    let limit = limit
        .map(|l| l.min(MAX_COMPUTE_UNIT_LIMIT))
        .unwrap_or_else(|| default_limit_floors(m).into_iter().max().unwrap());
    Some((u128::from(price.unwrap_or(0)) * u128::from(limit)).div_ceil(1_000_000))
}

/// What an instruction does, as spending policy needs it: the program's instruction tag,
/// the accounts it names in order (`None`: loaded from a lookup table), the amount, and
/// for `TransferChecked` the decimals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Class {
    /// System `Transfer` (2: from, to) or `TransferWithSeed` (11: from, base, to).
    System(u32, Vec<Option<Key>>, u64),
    /// SPL `Transfer` (3: source, destination, authority) or `TransferChecked`
    /// (12: source, mint, destination, authority), of this token program.
    Spl(Key, u8, Vec<Option<Key>>, u64, Option<u8>),
    Other,
}

fn le64(d: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(d.get(at..at + 8)?.try_into().ok()?))
}

/// Classifies instruction `ix` of a valid message. The programs read a prefix of the data
/// and ignore the rest, so a longer data still is the transfer.
pub(crate) fn classify(m: &Msg, ix: usize) -> Class {
    let (p, accounts, d) = &m.ixs[ix];
    let program = m.keys[usize::from(*p)];
    let named = |n: usize| -> Option<Vec<Option<Key>>> {
        (accounts.len() >= n).then(|| (0..n).map(|i| m.account(ix, i).unwrap()).collect())
    };
    let c = || -> Option<Class> {
        if program == SYSTEM {
            let tag = u32::from_le_bytes(d.get(..4)?.try_into().ok()?);
            let lamports = le64(d, 4)?;
            match tag {
                2 => Some(Class::System(2, named(2)?, lamports)),
                // TransferWithSeed carries the seed (u64 length + UTF-8) and the owner
                // after the lamports: an instruction without them moves nothing
                11 => {
                    let len = usize::try_from(le64(d, 12)?).ok()?;
                    let end = 20usize.checked_add(len)?;
                    std::str::from_utf8(d.get(20..end)?).ok()?;
                    d.get(end..end.checked_add(32)?)?;
                    Some(Class::System(11, named(3)?, lamports))
                }
                _ => None,
            }
        } else if program == TOKEN || program == TOKEN_2022 {
            let amount = le64(d, 1)?;
            match d[0] {
                3 => Some(Class::Spl(program, 3, named(3)?, amount, None)),
                12 => Some(Class::Spl(program, 12, named(4)?, amount, Some(*d.get(9)?))),
                _ => None,
            }
        } else {
            None
        }
    };
    c().unwrap_or(Class::Other)
}

/// keyward's classification in the same terms (the transfers the reference decodes;
/// everything else keyward decodes is `Other` here, as it is for the reference).
pub(crate) fn class_of(k: &keyward::chains::solana::Instruction) -> Class {
    use keyward::chains::solana::{
        Instruction as I, SystemInstruction as S, TokenInstruction as T,
    };
    match k.clone() {
        I::System(S::Transfer { from, to, lamports }) => Class::System(2, vec![from, to], lamports),
        I::System(S::TransferWithSeed {
            from,
            base,
            to,
            lamports,
        }) => Class::System(11, vec![from, base, to], lamports),
        I::Token {
            program,
            ix:
                T::Transfer {
                    source,
                    destination,
                    amount,
                },
            authority,
            ..
        } => Class::Spl(
            program,
            3,
            vec![source, destination, authority],
            amount,
            None,
        ),
        I::Token {
            program,
            ix:
                T::TransferChecked {
                    source,
                    mint,
                    destination,
                    amount,
                    decimals,
                },
            authority,
            ..
        } => Class::Spl(
            program,
            12,
            vec![source, mint, destination, authority],
            amount,
            Some(decimals),
        ),
        _ => Class::Other,
    }
}

/// A key of a generated message.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub(crate) enum GenKey {
    Wallet,
    System,
    Token,
    Token2022,
    ComputeBudget,
    Small(u8),
    Any(Key),
}

#[derive(Arbitrary, Debug, Clone)]
pub(crate) enum GenData {
    Transfer(u64),
    TransferWithSeed(u64, Vec<u8>),
    SplTransfer(u64),
    SplTransferChecked(u64, u8),
    Tail(Box<GenData>, Vec<u8>),
    Raw(Vec<u8>),
    /// System `AdvanceNonceAccount` (tag 4), the durable-nonce marker when first.
    AdvanceNonce,
    /// Compute Budget `SetComputeUnitPrice` (3), `SetComputeUnitLimit` (2),
    /// `RequestHeapFrame` (1).
    Price(u64),
    Limit(u32),
    Heap(u32),
}

impl GenData {
    fn bytes(&self) -> Vec<u8> {
        match self {
            GenData::Transfer(l) => [&2u32.to_le_bytes()[..], &l.to_le_bytes()].concat(),
            GenData::TransferWithSeed(l, rest) => {
                [&11u32.to_le_bytes()[..], &l.to_le_bytes(), rest].concat()
            }
            GenData::SplTransfer(a) => [&[3u8][..], &a.to_le_bytes()].concat(),
            GenData::SplTransferChecked(a, d) => [&[12u8][..], &a.to_le_bytes(), &[*d]].concat(),
            GenData::Tail(inner, tail) => [inner.bytes(), tail.clone()].concat(),
            GenData::Raw(b) => b.clone(),
            GenData::AdvanceNonce => 4u32.to_le_bytes().to_vec(),
            GenData::Price(p) => [&[3u8][..], &p.to_le_bytes()].concat(),
            GenData::Limit(l) => [&[2u8][..], &l.to_le_bytes()].concat(),
            GenData::Heap(b) => [&[1u8][..], &b.to_le_bytes()].concat(),
        }
    }
}

#[derive(Arbitrary, Debug, Clone)]
pub(crate) struct GenIx {
    pub program: u8,
    pub accounts: Vec<u8>,
    pub data: GenData,
}

#[derive(Arbitrary, Debug, Clone)]
pub(crate) struct GenMsg {
    pub v0: bool,
    pub header: [u8; 3],
    /// Header counts that fit the keys (else the raw `header`).
    pub sane_header: bool,
    pub keys: Vec<GenKey>,
    pub blockhash: Key,
    pub ixs: Vec<GenIx>,
    /// Keep account and program indices in range.
    pub sane_indices: bool,
    pub lookups: Vec<(Key, Vec<u8>, Vec<u8>)>,
}

impl GenMsg {
    pub fn build(&self, wallet: &Key) -> Msg {
        let keys: Vec<Key> = self
            .keys
            .iter()
            .take(40)
            .map(|k| match k {
                GenKey::Wallet => *wallet,
                GenKey::System => SYSTEM,
                GenKey::Token => TOKEN,
                GenKey::Token2022 => TOKEN_2022,
                GenKey::ComputeBudget => COMPUTE_BUDGET,
                GenKey::Small(n) => {
                    let mut k = [0u8; 32];
                    k[0] = 1;
                    k[31] = *n;
                    k
                }
                GenKey::Any(k) => *k,
            })
            .collect();
        let n = keys.len();
        let header = if self.sane_header && n > 0 {
            let required = 1 + usize::from(self.header[0]) % n;
            let ro_signed = usize::from(self.header[1]) % required;
            let ro_unsigned = usize::from(self.header[2]) % (n - required + 1);
            [required as u8, ro_signed as u8, ro_unsigned as u8]
        } else {
            self.header
        };
        let lookups: Vec<(Key, Vec<u8>, Vec<u8>)> = if self.v0 {
            self.lookups.iter().take(4).cloned().collect()
        } else {
            Vec::new()
        };
        let total = n + lookups
            .iter()
            .map(|(_, w, r)| w.len() + r.len())
            .sum::<usize>();
        let ixs = self
            .ixs
            .iter()
            .take(12)
            .map(|ix| {
                let (p, a) = if self.sane_indices && n > 1 && total > 0 {
                    (
                        (1 + usize::from(ix.program) % (n - 1)) as u8,
                        ix.accounts
                            .iter()
                            .map(|a| (usize::from(*a) % total.min(256)) as u8)
                            .collect(),
                    )
                } else {
                    (ix.program, ix.accounts.clone())
                };
                (p, a, ix.data.bytes())
            })
            .collect();
        Msg {
            version: self.v0.then_some(0),
            header,
            keys,
            blockhash: self.blockhash,
            ixs,
            lookups,
        }
    }
}

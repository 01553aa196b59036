//! Bounds on EIP-712 typed data, checked before alloy sees the request.
//!
//! alloy-dyn-abi handles typed data recursively: a field type such as `uint256[][]…[]`
//! becomes one nested `Box` per `[]` (built, walked and dropped by recursion), struct
//! references are resolved by depth-first recursion that expands every reference in
//! full (a type whose fields all name the next type grows exponentially), and the message
//! is coerced and hashed by recursion over the type, recomputing the `encodeType` string
//! for every struct value. The input chooses all of those depths and sizes, so one
//! request could overflow the stack (aborting the process) or burn seconds of CPU.
//!
//! [`check`] walks the JSON once, iteratively (no recursion whose depth the input
//! chooses), and refuses anything above the [`Limits`]. They are far above what real
//! typed data (Permit, Permit2, Seaport orders, Safe transactions) needs, and low enough
//! that alloy's recursion stays a few dozen frames deep. Shapes alloy would refuse anyway
//! (tuple types, malformed type strings, recursive structs) are refused here as
//! `invalid_typed_data`, so alloy's parser only ever sees plain `Name` or `Name[n]…`.

use std::collections::HashMap;

use serde_json::Value;

use super::EvmError;

/// The bounds [`check`] enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Entries in `types` (`EIP712Domain` included).
    pub max_types: usize,
    /// Fields of one type.
    pub max_fields: usize,
    /// Bytes of a type name, a field name or a field's type string (`Name[2][]`).
    pub max_name_len: usize,
    /// Bytes of all type names, field names and type strings together: alloy rebuilds
    /// the `encodeType` string from them for every struct value it hashes.
    pub max_types_bytes: usize,
    /// Array dimensions of one field type (`uint256[][3]` has 2).
    pub max_array_dims: usize,
    /// Size of a fixed array dimension (a larger one could never fit the message).
    pub max_fixed_len: usize,
    /// Struct nesting: a type that only has atomic fields is depth 1.
    pub max_struct_depth: usize,
    /// Struct levels plus array dimensions along any path through a type; this bounds
    /// alloy's recursion when it coerces and hashes the message.
    pub max_type_depth: usize,
    /// Fields of a type with every struct reference expanded (alloy resolves the type
    /// tree in full, so shared references multiply).
    pub max_expanded_fields: usize,
    /// Nesting of JSON objects and arrays in `message`.
    pub max_message_depth: usize,
    /// JSON values in `message` (every object, array, string, number, …).
    pub max_message_values: usize,
    /// JSON objects in `message` (each one alloy hashes as a struct).
    pub max_message_objects: usize,
}

impl Limits {
    /// The limits of the signing API (documented in docs/api.md).
    pub const DEFAULT: Limits = Limits {
        max_types: 64,
        max_fields: 64,
        max_name_len: 128,
        max_types_bytes: 16 * 1024,
        max_array_dims: 8,
        max_fixed_len: 10_000,
        max_struct_depth: 16,
        max_type_depth: 32,
        max_expanded_fields: 1024,
        max_message_depth: 32,
        max_message_values: 10_000,
        max_message_objects: 1024,
    };
}

fn too_complex(reason: String) -> EvmError {
    EvmError::TypedDataTooComplex(reason)
}

fn invalid(reason: impl Into<String>) -> EvmError {
    EvmError::InvalidTypedData(reason.into())
}

/// Shortens attacker-chosen names for error messages.
fn shown(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// The identifier alloy's EIP-712 parser accepts: `[A-Za-z_$][A-Za-z0-9_$:]*`.
fn is_identifier(s: &str) -> bool {
    let mut b = s.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_' || c == b'$')
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'$' | b':'))
}

/// A field type split into its base name and array dimensions.
struct FieldType<'a> {
    base: &'a str,
    dims: usize,
}

/// Parses `Name`, `Name[]`, `Name[3][]`…, iteratively. Length was checked first.
fn parse_field_type<'a>(
    owner: &str,
    field: &str,
    ty: &'a str,
    limits: &Limits,
) -> Result<FieldType<'a>, EvmError> {
    let (base, mut rest) = ty.split_at(ty.find('[').unwrap_or(ty.len()));
    if !is_identifier(base) {
        return Err(invalid(format!(
            "`{}.{}` has type `{}`: expected a type name optionally followed by [] or [n] (tuples are not EIP-712 types)",
            shown(owner),
            shown(field),
            shown(ty)
        )));
    }
    let mut dims = 0;
    while !rest.is_empty() {
        let bad = || {
            invalid(format!(
                "`{}.{}` has a malformed array type `{}`",
                shown(owner),
                shown(field),
                shown(ty)
            ))
        };
        let close = rest.find(']').ok_or_else(bad)?;
        let size = rest.get(1..close).filter(|_| rest.starts_with('['));
        let size = size.ok_or_else(bad)?;
        if !size.is_empty() {
            if !size.bytes().all(|b| b.is_ascii_digit()) || size.starts_with('0') {
                return Err(bad());
            }
            // more digits than the limit has cannot be within it (and cannot overflow)
            let n = if size.len() > 9 {
                usize::MAX
            } else {
                size.parse::<usize>().map_err(|_| bad())?
            };
            if n > limits.max_fixed_len {
                return Err(too_complex(format!(
                    "`{}.{}` declares a fixed array of {} elements; the limit is {} (max_fixed_len)",
                    shown(owner),
                    shown(field),
                    shown(size),
                    limits.max_fixed_len
                )));
            }
        }
        dims += 1;
        if dims > limits.max_array_dims {
            return Err(too_complex(format!(
                "`{}.{}` has more than {} array dimensions (max_array_dims)",
                shown(owner),
                shown(field),
                limits.max_array_dims
            )));
        }
        rest = &rest[close + 1..];
    }
    Ok(FieldType { base, dims })
}

/// One declared type, as the depth computation needs it.
struct Node<'a> {
    name: &'a str,
    /// `(index of the referenced declared type, dims)`; atomic fields are `(None, dims)`.
    fields: Vec<(Option<usize>, usize)>,
}

/// Computed once per type.
#[derive(Clone, Copy)]
struct Measure {
    struct_depth: usize,
    type_depth: usize,
    expanded: usize,
}

/// Checks `obj` (the typed-data object) against `limits`.
pub fn check(obj: &Value, limits: &Limits) -> Result<(), EvmError> {
    let nodes = check_types(obj, limits)?;
    check_primary_type(obj, &nodes)?;
    measure_types(&nodes, limits)?;
    check_message(obj.get("message"), limits)
}

fn check_types<'a>(obj: &'a Value, limits: &Limits) -> Result<Vec<Node<'a>>, EvmError> {
    let types = match obj.get("types") {
        Some(Value::Object(m)) => m,
        Some(_) => return Err(invalid("`types` must be an object")),
        None => return Err(invalid("`types` is missing")),
    };
    if types.len() > limits.max_types {
        return Err(too_complex(format!(
            "`types` declares {} types; the limit is {} (max_types)",
            types.len(),
            limits.max_types
        )));
    }
    let index: HashMap<&str, usize> = types
        .keys()
        .enumerate()
        .map(|(i, k)| (k.as_str(), i))
        .collect();
    let mut total = 0usize;
    let mut nodes = Vec::with_capacity(types.len());
    for (name, fields) in types {
        if name.len() > limits.max_name_len {
            return Err(too_complex(format!(
                "type name `{}` is {} bytes; the limit is {} (max_name_len)",
                shown(name),
                name.len(),
                limits.max_name_len
            )));
        }
        if !is_identifier(name) {
            return Err(invalid(format!(
                "type name `{}` is not an identifier",
                shown(name)
            )));
        }
        let fields = fields
            .as_array()
            .ok_or_else(|| invalid(format!("`types.{}` must be a list", shown(name))))?;
        if fields.len() > limits.max_fields {
            return Err(too_complex(format!(
                "type `{}` has {} fields; the limit is {} (max_fields)",
                shown(name),
                fields.len(),
                limits.max_fields
            )));
        }
        total += name.len();
        let mut refs = Vec::with_capacity(fields.len());
        for f in fields {
            let bad = || {
                invalid(format!(
                    "`types.{}` entries must be {{name, type}} strings",
                    shown(name)
                ))
            };
            let fname = f.get("name").and_then(Value::as_str).ok_or_else(bad)?;
            let ftype = f.get("type").and_then(Value::as_str).ok_or_else(bad)?;
            for (what, s) in [("field name", fname), ("type string", ftype)] {
                if s.len() > limits.max_name_len {
                    return Err(too_complex(format!(
                        "{what} `{}` in type `{}` is {} bytes; the limit is {} (max_name_len)",
                        shown(s),
                        shown(name),
                        s.len(),
                        limits.max_name_len
                    )));
                }
            }
            total += fname.len() + ftype.len();
            let parsed = parse_field_type(name, fname, ftype, limits)?;
            refs.push((index.get(parsed.base).copied(), parsed.dims));
        }
        if total > limits.max_types_bytes {
            return Err(too_complex(format!(
                "the type definitions exceed {} bytes (max_types_bytes)",
                limits.max_types_bytes
            )));
        }
        nodes.push(Node { name, fields: refs });
    }
    Ok(nodes)
}

fn check_primary_type(obj: &Value, nodes: &[Node<'_>]) -> Result<(), EvmError> {
    let primary = obj
        .get("primaryType")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("`primaryType` must be a string"))?;
    // alloy hashes only the domain for this one, declared or not
    if primary == "EIP712Domain" || nodes.iter().any(|n| n.name == primary) {
        Ok(())
    } else {
        Err(invalid(format!(
            "`primaryType` `{}` is not declared in `types`",
            shown(primary)
        )))
    }
}

/// Depth and expanded size of every declared type, by an iterative post-order walk
/// (memoised, so each type is measured once); a reference back into the current path is
/// a recursive type, which alloy cannot hash either.
fn measure_types(nodes: &[Node<'_>], limits: &Limits) -> Result<(), EvmError> {
    let mut done: Vec<Option<Measure>> = vec![None; nodes.len()];
    let mut on_path = vec![false; nodes.len()];
    for root in 0..nodes.len() {
        if done[root].is_some() {
            continue;
        }
        // (type, next field to look at); the stack is at most `nodes.len()` deep
        let mut stack = vec![(root, 0usize)];
        on_path[root] = true;
        while let Some(&mut (t, ref mut next)) = stack.last_mut() {
            if let Some(&(Some(child), _)) = nodes[t].fields.get(*next) {
                *next += 1;
                if on_path[child] {
                    return Err(invalid(format!(
                        "type `{}` refers to itself through `{}`: recursive structs cannot be signed",
                        shown(nodes[child].name),
                        shown(nodes[t].name)
                    )));
                }
                if done[child].is_none() {
                    on_path[child] = true;
                    stack.push((child, 0));
                }
                continue;
            }
            if *next < nodes[t].fields.len() {
                *next += 1; // an atomic field
                continue;
            }
            let m = measure(&nodes[t], &done);
            let name = shown(nodes[t].name);
            if m.struct_depth > limits.max_struct_depth {
                return Err(too_complex(format!(
                    "type `{name}` nests structs {} deep; the limit is {} (max_struct_depth)",
                    m.struct_depth, limits.max_struct_depth
                )));
            }
            if m.type_depth > limits.max_type_depth {
                return Err(too_complex(format!(
                    "type `{name}` nests structs and arrays {} deep; the limit is {} (max_type_depth)",
                    m.type_depth, limits.max_type_depth
                )));
            }
            if m.expanded > limits.max_expanded_fields {
                return Err(too_complex(format!(
                    "type `{name}` expands to more than {} fields (max_expanded_fields)",
                    limits.max_expanded_fields
                )));
            }
            done[t] = Some(m);
            on_path[t] = false;
            stack.pop();
        }
    }
    Ok(())
}

/// The measure of `node`, whose struct fields are all measured already.
fn measure(node: &Node<'_>, done: &[Option<Measure>]) -> Measure {
    let mut m = Measure {
        struct_depth: 1,
        type_depth: 1,
        expanded: 0,
    };
    for &(child, dims) in &node.fields {
        let c = child.and_then(|c| done[c]);
        let (sd, td, ex) = c.map_or((0, 0, 1), |c| (c.struct_depth, c.type_depth, c.expanded));
        m.struct_depth = m.struct_depth.max(1 + sd);
        m.type_depth = m.type_depth.max(1 + dims + td);
        // each child is within the limit, and there are at most max_fields of them
        m.expanded = m.expanded.saturating_add(ex);
    }
    m
}

/// Counts and depth of the message, by an explicit stack.
fn check_message(message: Option<&Value>, limits: &Limits) -> Result<(), EvmError> {
    let Some(message) = message else {
        return Ok(());
    };
    let mut values = 0usize;
    let mut objects = 0usize;
    // (value, container depth of the value itself: 1 for the top object)
    let mut stack = vec![(message, 1usize)];
    while let Some((v, depth)) = stack.pop() {
        values += 1;
        if values > limits.max_message_values {
            return Err(too_complex(format!(
                "`message` has more than {} JSON values (max_message_values)",
                limits.max_message_values
            )));
        }
        let children: Box<dyn Iterator<Item = &Value>> = match v {
            Value::Object(m) => {
                objects += 1;
                if objects > limits.max_message_objects {
                    return Err(too_complex(format!(
                        "`message` has more than {} objects (max_message_objects)",
                        limits.max_message_objects
                    )));
                }
                Box::new(m.values())
            }
            Value::Array(a) => Box::new(a.iter()),
            _ => continue,
        };
        if depth > limits.max_message_depth {
            return Err(too_complex(format!(
                "`message` nests objects and arrays more than {} deep (max_message_depth)",
                limits.max_message_depth
            )));
        }
        stack.extend(children.map(|c| (c, depth + 1)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const L: Limits = Limits::DEFAULT;

    /// A typed-data object with `types`, primary type `P` and `message`.
    fn td(types: Value, message: Value) -> Value {
        json!({"types": types, "primaryType": "P", "domain": {}, "message": message})
    }

    fn code(v: &Value) -> Result<(), &'static str> {
        check(v, &L).map_err(|e| e.code())
    }

    fn reason(v: &Value) -> String {
        check(v, &L).unwrap_err().to_string()
    }

    fn fields(n: usize, ty: &str) -> Value {
        Value::Array(
            (0..n)
                .map(|i| json!({"name": format!("f{i}"), "type": ty}))
                .collect(),
        )
    }

    #[test]
    fn type_count_boundary() {
        let types = |n: usize| {
            let mut m = serde_json::Map::new();
            m.insert("P".into(), fields(1, "uint256"));
            for i in 1..n {
                m.insert(format!("T{i}"), fields(1, "uint256"));
            }
            Value::Object(m)
        };
        assert_eq!(code(&td(types(L.max_types), json!({}))), Ok(()));
        let over = td(types(L.max_types + 1), json!({}));
        assert_eq!(code(&over), Err("typed_data_too_complex"));
        assert!(reason(&over).contains("max_types"), "{}", reason(&over));
    }

    #[test]
    fn fields_per_type_boundary() {
        let ok = td(json!({"P": fields(L.max_fields, "bool")}), json!({}));
        assert_eq!(code(&ok), Ok(()));
        let over = td(json!({"P": fields(L.max_fields + 1, "bool")}), json!({}));
        assert_eq!(code(&over), Err("typed_data_too_complex"));
        assert!(reason(&over).contains("max_fields"));
    }

    #[test]
    fn name_and_type_string_length_boundary() {
        let at = "a".repeat(L.max_name_len);
        let over = "a".repeat(L.max_name_len + 1);
        // field name
        let v = |n: &str| td(json!({"P": [{"name": n, "type": "bool"}]}), json!({}));
        assert_eq!(code(&v(&at)), Ok(()));
        assert_eq!(code(&v(&over)), Err("typed_data_too_complex"));
        assert!(reason(&v(&over)).contains("max_name_len"));
        // type string (a declared struct name of exactly the limit, then one more `x`)
        let long = "S".repeat(L.max_name_len - 2);
        let ok = td(
            json!({"P": [{"name": "s", "type": format!("{long}[]")}], long.clone(): []}),
            json!({}),
        );
        assert_eq!(code(&ok), Ok(()));
        let over = td(
            json!({"P": [{"name": "s", "type": format!("{long}x[]")}], format!("{long}x"): []}),
            json!({}),
        );
        assert_eq!(code(&over), Err("typed_data_too_complex"));
        // type name
        let v = |n: &str| json!({"types": {n: []}, "primaryType": n, "message": {}});
        assert_eq!(code(&v(&at)), Ok(()));
        assert_eq!(code(&v(&over_name())), Err("typed_data_too_complex"));
    }

    fn over_name() -> String {
        "a".repeat(L.max_name_len + 1)
    }

    #[test]
    fn array_dims_boundary() {
        let ty = |n: usize| format!("uint256{}", "[]".repeat(n));
        let ok = td(
            json!({"P": [{"name": "a", "type": ty(L.max_array_dims)}]}),
            json!({}),
        );
        assert_eq!(code(&ok), Ok(()));
        let over = td(
            json!({"P": [{"name": "a", "type": ty(L.max_array_dims + 1)}]}),
            json!({}),
        );
        assert_eq!(code(&over), Err("typed_data_too_complex"));
        assert!(reason(&over).contains("max_array_dims"));
        // the shape: refused on length before the dimensions are even counted
        let huge = td(
            json!({"P": [{"name": "a", "type": ty(100_000)}]}),
            json!({}),
        );
        assert_eq!(code(&huge), Err("typed_data_too_complex"));
    }

    #[test]
    fn fixed_array_size_boundary() {
        let ty = |n: usize| format!("bool[{n}]");
        let v = |n: usize| td(json!({"P": [{"name": "a", "type": ty(n)}]}), json!({}));
        assert_eq!(code(&v(L.max_fixed_len)), Ok(()));
        assert_eq!(code(&v(L.max_fixed_len + 1)), Err("typed_data_too_complex"));
        let huge = td(
            json!({"P": [{"name": "a", "type": "bool[99999999999999999999999]"}]}),
            json!({}),
        );
        assert_eq!(code(&huge), Err("typed_data_too_complex"));
        for bad in [
            "bool[0]", "bool[01]", "bool[", "bool]", "bool[x]", "bool[1]x",
        ] {
            let v = td(json!({"P": [{"name": "a", "type": bad}]}), json!({}));
            assert_eq!(code(&v), Err("invalid_typed_data"), "{bad}");
        }
    }

    /// `P` → `S1` → … → `S{n-1}`: a chain of n structs.
    fn chain(n: usize) -> Value {
        let mut m = serde_json::Map::new();
        for i in 0..n {
            let name = if i == 0 {
                "P".to_string()
            } else {
                format!("S{i}")
            };
            let next = if i + 1 < n {
                json!([{"name": "next", "type": format!("S{}", i + 1)}])
            } else {
                json!([{"name": "end", "type": "bool"}])
            };
            m.insert(name, next);
        }
        Value::Object(m)
    }

    #[test]
    fn struct_depth_boundary() {
        assert_eq!(code(&td(chain(L.max_struct_depth), json!({}))), Ok(()));
        let over = td(chain(L.max_struct_depth + 1), json!({}));
        assert_eq!(code(&over), Err("typed_data_too_complex"));
        assert!(reason(&over).contains("max_struct_depth"));
        // the shape: 200 chained structs (over the type count too)
        assert_eq!(
            code(&td(chain(200), json!({}))),
            Err("typed_data_too_complex")
        );
    }

    #[test]
    fn type_depth_boundary() {
        // P → S (as S[]…[] with `d` dims) → bool[]…[] with 8 dims: depth 1 + d + 1 + 8
        let v = |d: usize| {
            td(
                json!({
                    "P": [{"name": "s", "type": format!("S{}", "[]".repeat(d))}],
                    "S": [{"name": "b", "type": format!("bool{}", "[]".repeat(8))}],
                    "Q": [{"name": "p", "type": format!("P{}", "[]".repeat(8))}],
                    "R": [{"name": "q", "type": format!("Q{}", "[]".repeat(8))}],
                }),
                json!({}),
            )
        };
        // R: 1 + 8 + Q(1 + 8 + P(1 + d + S(1 + 8)))) = 28 + d
        let at = L.max_type_depth - 28;
        assert_eq!(code(&v(at)), Ok(()));
        let over = v(at + 1);
        assert_eq!(code(&over), Err("typed_data_too_complex"));
        assert!(reason(&over).contains("max_type_depth"));
    }

    #[test]
    fn expanded_fields_boundary() {
        // P has `n` fields of type S, S has 32 atomic fields
        let v = |n: usize| {
            td(
                json!({"P": fields(n, "S"), "S": fields(32, "bool")}),
                json!({}),
            )
        };
        assert_eq!(code(&v(L.max_expanded_fields / 32)), Ok(()));
        let over = v(L.max_expanded_fields / 32 + 1);
        assert_eq!(code(&over), Err("typed_data_too_complex"));
        assert!(reason(&over).contains("max_expanded_fields"));
    }

    /// `P` plus types whose names, field names and type strings add up to `total` bytes.
    fn types_of_size(total: usize) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("P".into(), json!([]));
        let mut left = total - 1;
        let mut t = 0;
        while left > 128 {
            let name = format!("T{t:03}");
            t += 1;
            left -= name.len();
            let mut list = Vec::new();
            while left > 128 + 104 && list.len() < L.max_fields {
                // "bool" and a 100-byte field name
                list.push(json!({"name": format!("f{:099}", list.len()), "type": "bool"}));
                left -= 104;
            }
            m.insert(name, Value::Array(list));
        }
        if left > 0 {
            m.insert("Z".repeat(left), json!([]));
        }
        Value::Object(m)
    }

    #[test]
    fn types_bytes_boundary() {
        let ok = td(types_of_size(L.max_types_bytes), json!({}));
        assert_eq!(code(&ok), Ok(()), "{}", reason(&ok));
        let over = td(types_of_size(L.max_types_bytes + 1), json!({}));
        assert_eq!(code(&over), Err("typed_data_too_complex"));
        assert!(reason(&over).contains("max_types_bytes"));
    }

    #[test]
    fn message_depth_boundary() {
        let nested = |d: usize| {
            let mut v = json!(1);
            for _ in 1..d {
                v = json!([v]);
            }
            json!({ "a": v })
        };
        let t = json!({"P": [{"name": "a", "type": "bool"}]});
        assert_eq!(code(&td(t.clone(), nested(L.max_message_depth))), Ok(()));
        let over = td(t, nested(L.max_message_depth + 1));
        assert_eq!(code(&over), Err("typed_data_too_complex"));
        assert!(reason(&over).contains("max_message_depth"));
    }

    #[test]
    fn message_values_and_objects_boundary() {
        let t = json!({"P": [{"name": "a", "type": "bool[]"}]});
        // the message object, its array, and n - 2 elements
        let vals = |n: usize| json!({"a": vec![true; n - 2]});
        assert_eq!(code(&td(t.clone(), vals(L.max_message_values))), Ok(()));
        let over = td(t.clone(), vals(L.max_message_values + 1));
        assert_eq!(code(&over), Err("typed_data_too_complex"));
        assert!(reason(&over).contains("max_message_values"));

        let objs = |n: usize| json!({"a": vec![json!({}); n - 1]});
        assert_eq!(code(&td(t.clone(), objs(L.max_message_objects))), Ok(()));
        let over = td(t, objs(L.max_message_objects + 1));
        assert_eq!(code(&over), Err("typed_data_too_complex"));
        assert!(reason(&over).contains("max_message_objects"));
    }

    #[test]
    fn shapes_alloy_cannot_hash_are_invalid() {
        let cases = [
            // tuples: alloy would hit `unreachable!` while hashing one
            json!({"P": [{"name": "t", "type": "(uint256,uint256)"}]}),
            json!({"P": [{"name": "t", "type": "tuple(uint256)"}]}),
            // self and mutual recursion
            json!({"P": [{"name": "p", "type": "P[]"}]}),
            json!({"P": [{"name": "a", "type": "A"}], "A": [{"name": "b", "type": "B"}], "B": [{"name": "a", "type": "A[2]"}]}),
            // type names that are not identifiers
            json!({"P": [], "P[]": []}),
            json!({"P": [{"name": "x", "type": " uint256"}]}),
            json!({"P": [{"name": "x"}]}),
            json!({"P": {"name": "x"}}),
        ];
        for (i, t) in cases.into_iter().enumerate() {
            assert_eq!(
                code(&td(t, json!({}))),
                Err("invalid_typed_data"),
                "case {i}"
            );
        }
        // the primary type must be declared (alloy would parse any type string)
        let v = json!({"types": {"P": []}, "primaryType": "uint256[][]", "message": {}});
        assert_eq!(code(&v), Err("invalid_typed_data"));
        let v = json!({"types": {}, "primaryType": "EIP712Domain", "message": {}});
        assert_eq!(code(&v), Ok(()));
    }

    #[test]
    fn a_shared_struct_is_measured_once_and_fits() {
        // diamond: P → A, B; A → S; B → S; every type within limits
        let v = td(
            json!({
                "P": [{"name": "a", "type": "A"}, {"name": "b", "type": "B[]"}],
                "A": [{"name": "s", "type": "S"}],
                "B": [{"name": "s", "type": "S[2]"}],
                "S": [{"name": "x", "type": "uint256"}],
            }),
            json!({}),
        );
        assert_eq!(code(&v), Ok(()));
    }
}

//! The operations, from their declarations in proto/v8box.proto (the `(v8box.options.op)`
//! message option and `(v8box.options.resource)` field options, proto/options.proto):
//! - `op_table.rs` (in `ops::table`): one `OpSpec` per operation and `spec_of`, from a `Call`'s
//!   member to its spec;
//! - `op_handlers.rs` (in `dispatch::plan`): the `Handlers` trait, one method per operation (a
//!   dispatcher that misses one does not compile), and `plan_call`, which routes a `Call`'s
//!   member to its method;
//! - JavaScript: `op<Member>(payload, map)`, one per call, on the operation's lane (`callSync`,
//!   `callAsync` or `send`), which js/sys.js and js/web.js call.

use std::fmt::Write;

use prost_reflect::{DescriptorPool, MessageDescriptor, Value};

/// One declared operation.
pub struct Op {
    /// Its name (`fs.readFile`).
    pub name: String,
    /// Its message (`ReadFile`).
    pub message: String,
    /// Its member in `Call` (`read_file`); `None` for one the host sends (`host.message`).
    pub member: Option<String>,
    /// That member's field number in `Call` (0 for one the host sends).
    pub field: u32,
    /// (field, permission) of each resource field, in field order; one with no field (`""`)
    /// for an operation whose `permission` option names its resource's (`stdin.read`).
    pub resources: Vec<(String, &'static str)>,
    pub side_effect: bool,
    pub lane: &'static str,
    pub recorded: bool,
    pub quota: bool,
    pub js: String,
    pub after_log_failure: bool,
}

fn upper_camel(snake: &str) -> String {
    snake
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn lower_camel(snake: &str) -> String {
    let u = upper_camel(snake);
    let mut c = u.chars();
    c.next()
        .map(|f| f.to_lowercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

fn snake(camel: &str) -> String {
    let mut out = String::new();
    for (i, ch) in camel.chars().enumerate() {
        if ch.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.extend(ch.to_lowercase());
    }
    out
}

fn permission(number: i32, message: &str) -> &'static str {
    match number {
        1 => "Read",
        2 => "Write",
        3 => "Net",
        4 => "Env",
        5 => "Host",
        6 => "Stdin",
        n => panic!("{message}: resource permission {n} is not one v8box knows"),
    }
}

fn lane(number: i32) -> &'static str {
    match number {
        0 => "Sync",
        1 => "Async",
        2 => "Notify",
        3 => "Delivered",
        n => panic!("lane {n} is not one v8box knows"),
    }
}

/// Every message of package `v8box.v1` with an `op` option, `Call`'s members first in field
/// order, then the others (those the host sends).
pub fn ops(pool: &DescriptorPool) -> Vec<Op> {
    let op_ext = pool
        .get_extension_by_name("v8box.options.op")
        .expect("proto/options.proto declares (v8box.options.op)");
    let res_ext = pool
        .get_extension_by_name("v8box.options.resource")
        .expect("proto/options.proto declares (v8box.options.resource)");
    let call = pool
        .get_message_by_name("v8box.v1.Call")
        .expect("v8box.v1.Call");
    let mut members = Vec::new();
    for f in call.fields() {
        if let Some(m) = f.kind().as_message() {
            members.push((f.name().to_string(), f.number(), m.clone()));
        }
    }
    let declared = |m: &MessageDescriptor| m.options().has_extension(&op_ext);
    let mut out = Vec::new();
    let read = |m: &MessageDescriptor, member: Option<String>, field: u32| -> Op {
        let opts = m.options();
        let v = opts.get_extension(&op_ext);
        let o = v.as_message().expect("an Op message");
        let get = |name: &str| o.get_field_by_name(name).map(|v| v.into_owned());
        let s = |name: &str| match get(name) {
            Some(Value::String(s)) => s,
            _ => String::new(),
        };
        let b = |name: &str| matches!(get(name), Some(Value::Bool(true)));
        let e = |name: &str| match get(name) {
            Some(Value::EnumNumber(n)) => n,
            _ => 0,
        };
        let name = s("name");
        assert!(
            !name.is_empty(),
            "{}: its (v8box.options.op) needs a name",
            m.name()
        );
        let mut resources = Vec::new();
        for f in m.fields() {
            let fo = f.options();
            if fo.has_extension(&res_ext) {
                if let Value::EnumNumber(n) = fo.get_extension(&res_ext).as_ref() {
                    if *n != 0 {
                        resources.push((f.name().to_string(), permission(*n, m.name())));
                    }
                }
            }
        }
        // An operation on a thing of which there is one (stdin): a resource with no field.
        let whole = e("permission");
        if whole != 0 {
            assert!(
                resources.is_empty(),
                "{}: `permission` is for an operation with no resource fields",
                m.name()
            );
            resources.push((String::new(), permission(whole, m.name())));
        }
        Op {
            name,
            message: m.name().to_string(),
            member,
            field,
            resources,
            side_effect: b("side_effect"),
            lane: lane(e("lane")),
            recorded: b("recorded"),
            quota: b("quota"),
            js: s("js"),
            after_log_failure: b("after_log_failure"),
        }
    };
    for (member, field, m) in &members {
        assert!(
            declared(m),
            "Call.{member} ({}): every operation is declared with (v8box.options.op)",
            m.name()
        );
        out.push(read(m, Some(member.clone()), *field));
    }
    for m in pool.all_messages() {
        if m.package_name() == "v8box.v1"
            && declared(&m)
            && !members
                .iter()
                .any(|(_, _, c)| c.full_name() == m.full_name())
        {
            out.push(read(&m, None, 0));
        }
    }
    let mut names: Vec<&str> = out.iter().map(|o| o.name.as_str()).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len(), "two operations share a name");
    out
}

fn consts(o: &Op) -> String {
    o.name
        .replace('.', "_")
        .chars()
        .flat_map(|c| {
            if c.is_uppercase() {
                vec!['_', c]
            } else {
                vec![c.to_ascii_uppercase()]
            }
        })
        .collect()
}

/// `op_table.rs`.
pub fn table(ops: &[Op]) -> String {
    let mut rs =
        String::from("// Generated by build.rs (build/op_gen.rs) from proto/v8box.proto.\n");
    let _ = writeln!(
        rs,
        "/// Every operation, as proto/v8box.proto declares it.\npub const OPS: &[OpSpec] = &["
    );
    for o in ops {
        let resources: Vec<String> = o
            .resources
            .iter()
            .map(|(f, p)| format!("({f:?}, Permission::{p})"))
            .collect();
        let _ = writeln!(
            rs,
            "    OpSpec {{ name: {:?}, message: {:?}, member: {:?}, resources: &[{}], side_effect: {}, lane: Lane::{}, recorded: {}, quota: {}, js: {:?}, after_log_failure: {} }},",
            o.name,
            o.message,
            o.member.as_deref().map(lower_camel).unwrap_or_default(),
            resources.join(", "),
            o.side_effect,
            o.lane,
            o.recorded,
            o.quota,
            o.js,
            o.after_log_failure,
        );
    }
    rs.push_str("];\n");
    for (i, o) in ops.iter().enumerate() {
        let _ = writeln!(
            rs,
            "/// `{}`.\npub const {}: &OpSpec = &OPS[{i}];",
            o.name,
            consts(o)
        );
    }
    rs.push_str("/// The spec of a `Call`'s operation.\npub fn spec_of(op: &crate::proto::call::Op) -> &'static OpSpec {\n    use crate::proto::call::Op;\n    match op {\n");
    for o in ops {
        if let Some(m) = &o.member {
            let _ = writeln!(rs, "        Op::{}(_) => {},", upper_camel(m), consts(o));
        }
    }
    rs.push_str("    }\n}\n");
    rs.push_str("/// The spec of the `Call` member with field number `number` (what a look at a `Call`'s\n/// bytes finds without decoding it).\npub fn spec_of_field(number: u32) -> Option<&'static OpSpec> {\n    match number {\n");
    for o in ops.iter().filter(|o| o.member.is_some()) {
        let _ = writeln!(rs, "        {} => Some({}),", o.field, consts(o));
    }
    rs.push_str("        _ => None,\n    }\n}\n");
    rs
}

/// `op_handlers.rs`.
pub fn handlers(ops: &[Op]) -> String {
    let mut rs = String::from(
        "// Generated by build.rs (build/op_gen.rs) from proto/v8box.proto.\n\
         /// One method per operation: what it validates, which resources the policy decides, how it\n\
         /// runs (the pipeline, `Dispatcher::pipeline`, does the rest, in one order for all).\n\
         pub trait Handlers {\n",
    );
    for o in ops {
        let method = o.member.clone().unwrap_or_else(|| snake(&o.message));
        let _ = writeln!(
            rs,
            "    /// `{}` (`{}`).\n    fn {method}(&self, m: crate::proto::{}) -> Plan;",
            o.name, o.message, o.message
        );
    }
    rs.push_str("}\n\n/// Routes a `Call`'s operation to its handler.\npub fn plan_call<H: Handlers + ?Sized>(h: &H, op: crate::proto::call::Op) -> (&'static OpSpec, Plan) {\n    use crate::proto::call::Op;\n    use crate::ops::table as t;\n    match op {\n");
    for o in ops {
        if let Some(m) = &o.member {
            let _ = writeln!(
                rs,
                "        Op::{}(m) => (t::{}, h.{m}(m)),",
                upper_camel(m),
                consts(o)
            );
        }
    }
    rs.push_str("    }\n}\n");
    rs
}

/// The call functions js/sys.js uses.
pub fn js(ops: &[Op]) -> String {
    let mut js =
        String::from("// ---- generated by build.rs (build/op_gen.rs): each call on its lane\n");
    for o in ops {
        let Some(member) = &o.member else { continue };
        let m = lower_camel(member);
        let f = format!("op{}", upper_camel(member));
        let body = match o.lane {
            "Sync" => format!("return callSync('{m}', payload);"),
            "Async" => format!("return callAsync('{m}', payload, map, {f});"),
            "Notify" => format!("send('{m}', payload, nextCallId++);"),
            other => panic!("{}: lane {other} is not a call's", o.name),
        };
        let _ = writeln!(
            js,
            "// `{}`\nfunction {f}(payload, map) {{ {body} }}",
            o.name
        );
    }
    js
}

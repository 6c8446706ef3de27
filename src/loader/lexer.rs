//! A small JavaScript tokenizer for what the loader needs to know of a file without running
//! it: whether it has ES module syntax, the `require("...")` calls with a string literal, and
//! the names a CommonJS module exports in the common shapes (`exports.x =`,
//! `module.exports = { a, b }`, `Object.defineProperty(exports, "x", ...)`, re-exports of
//! `module.exports = require("...")` and `__exportStar(require("..."))`). It skips comments,
//! strings, template literals and regular expressions; it does not parse.

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Punct(&'static str),
    /// A number, template text or regular expression: something that is not any of the above.
    Other,
}

const PUNCTS: &[&str] = &[
    "...", "===", "!==", "==", "!=", "=>", "?.", "=", ".", ",", ";", ":", "(", ")", "[", "]", "{",
    "}",
];

/// Keywords after which a `/` starts a regular expression.
const BEFORE_REGEX: &[&str] = &[
    "return",
    "typeof",
    "instanceof",
    "in",
    "of",
    "new",
    "delete",
    "void",
    "throw",
    "case",
    "do",
    "else",
    "yield",
    "await",
];

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b'$' || b >= 0x80
}

fn is_ident(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit()
}

/// The tokens of `src`, each with its bracket depth (`{`, `(`, `[` not yet closed).
fn tokenize(src: &str) -> Vec<(Tok, usize)> {
    let b = src.as_bytes();
    let mut out: Vec<(Tok, usize)> = Vec::new();
    let mut depth = 0usize;
    // Depths at which a template literal's `${` was opened.
    let mut templates: Vec<usize> = Vec::new();
    let mut i = 0;
    let regex_ok = |out: &Vec<(Tok, usize)>| match out.last() {
        None => true,
        Some((Tok::Ident(w), _)) => BEFORE_REGEX.contains(&w.as_str()),
        Some((Tok::Str(_), _)) | Some((Tok::Other, _)) => false,
        Some((Tok::Punct(p), _)) => !matches!(*p, ")" | "]"),
    };
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            i += 2;
            while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                i += 1;
            }
            i += 2;
        } else if c == b'#' && i == 0 && b.get(1) == Some(&b'!') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'"' || c == b'\'' {
            let start = i + 1;
            i += 1;
            let mut value = String::new();
            let mut seg = start;
            while i < b.len() && b[i] != c && b[i] != b'\n' {
                if b[i] == b'\\' {
                    value.push_str(&src[seg..i]);
                    i += 1;
                    if i < b.len() {
                        let e = b[i];
                        match e {
                            b'n' => value.push('\n'),
                            b't' => value.push('\t'),
                            b'\n' => {}
                            _ if e < 0x80 => value.push(e as char),
                            _ => {
                                // A multi-byte character: copy it whole.
                                let mut j = i + 1;
                                while j < b.len() && (b[j] & 0xC0) == 0x80 {
                                    j += 1;
                                }
                                value.push_str(&src[i..j]);
                                i = j - 1;
                            }
                        }
                        i += 1;
                    }
                    seg = i;
                } else {
                    i += 1;
                }
            }
            value.push_str(&src[seg..i.min(b.len())]);
            i += 1;
            out.push((Tok::Str(value), depth));
        } else if c == b'`' || (c == b'}' && templates.last() == Some(&depth)) {
            if c == b'}' {
                templates.pop();
            }
            i += 1;
            loop {
                if i >= b.len() {
                    break;
                }
                if b[i] == b'\\' {
                    i += 2;
                } else if b[i] == b'`' {
                    i += 1;
                    break;
                } else if b[i] == b'$' && b.get(i + 1) == Some(&b'{') {
                    i += 2;
                    templates.push(depth);
                    break;
                } else {
                    i += 1;
                }
            }
            out.push((Tok::Other, depth));
        } else if c == b'/' && regex_ok(&out) {
            i += 1;
            let mut class = false;
            while i < b.len() && b[i] != b'\n' {
                match b[i] {
                    b'\\' => i += 1,
                    b'[' => class = true,
                    b']' => class = false,
                    b'/' if !class => break,
                    _ => {}
                }
                i += 1;
            }
            i += 1;
            while i < b.len() && is_ident(b[i]) {
                i += 1;
            }
            out.push((Tok::Other, depth));
        } else if is_ident_start(c) {
            let start = i;
            while i < b.len() && is_ident(b[i]) {
                i += 1;
            }
            out.push((Tok::Ident(src[start..i].to_string()), depth));
        } else if c.is_ascii_digit() {
            while i < b.len() && (is_ident(b[i]) || b[i] == b'.') {
                i += 1;
            }
            out.push((Tok::Other, depth));
        } else {
            let rest = &src[i..];
            match PUNCTS.iter().find(|p| rest.starts_with(**p)) {
                Some(p) => {
                    match *p {
                        "{" | "(" | "[" => {
                            out.push((Tok::Punct(p), depth));
                            depth += 1;
                        }
                        "}" | ")" | "]" => {
                            depth = depth.saturating_sub(1);
                            out.push((Tok::Punct(p), depth));
                        }
                        _ => out.push((Tok::Punct(p), depth)),
                    }
                    i += p.len();
                }
                None => {
                    // Another operator; one byte (or character) of it.
                    let mut j = i + 1;
                    while j < b.len() && (b[j] & 0xC0) == 0x80 {
                        j += 1;
                    }
                    out.push((Tok::Other, depth));
                    i = j;
                }
            }
        }
    }
    out
}

/// What the loader learns of a file from its tokens.
#[derive(Debug, Default, PartialEq)]
pub struct Analysis {
    /// An `import` or `export` declaration at the top level, or `import.meta`.
    pub esm_syntax: bool,
    /// Mentions `require`, `module`, `exports`, `__filename` or `__dirname`.
    pub cjs_markers: bool,
    /// The specifiers of `require("...")` calls, each once, in order.
    pub requires: Vec<String>,
    /// The names a CommonJS module exports, each once.
    pub exports: Vec<String>,
    /// Modules whose exports a CommonJS module re-exports (`module.exports = require("x")`).
    pub reexports: Vec<String>,
}

fn push_once(list: &mut Vec<String>, s: &str) {
    if !list.iter().any(|x| x == s) {
        list.push(s.to_string());
    }
}

/// Analyzes `src` (see the module's documentation).
pub fn analyze(src: &str) -> Analysis {
    let t = tokenize(src);
    let mut a = Analysis::default();
    let ident = |i: usize| match t.get(i) {
        Some((Tok::Ident(w), _)) => Some(w.as_str()),
        _ => None,
    };
    let punct = |i: usize, p: &str| matches!(t.get(i), Some((Tok::Punct(q), _)) if *q == p);
    let string = |i: usize| match t.get(i) {
        Some((Tok::Str(s), _)) => Some(s.as_str()),
        _ => None,
    };
    let after_dot = |i: usize| i > 0 && (punct(i - 1, ".") || punct(i - 1, "?."));
    // `exports` or `module.exports` starting at `i`: the index after it.
    let exports_at = |i: usize| -> Option<usize> {
        if after_dot(i) {
            return None;
        }
        match ident(i) {
            Some("exports") => Some(i + 1),
            Some("module") if punct(i + 1, ".") && ident(i + 2) == Some("exports") => Some(i + 3),
            _ => None,
        }
    };
    for i in 0..t.len() {
        let depth = t[i].1;
        let Some(word) = ident(i) else { continue };
        if after_dot(i) {
            continue;
        }
        match word {
            "import" => {
                if punct(i + 1, ".") && ident(i + 2) == Some("meta") {
                    a.esm_syntax = true;
                } else if depth == 0
                    && (string(i + 1).is_some()
                        || punct(i + 1, "{")
                        || matches!(t.get(i + 1), Some((Tok::Other, _)))  // `import * as x`
                        || (ident(i + 1).is_some() && !punct(i + 1, "(")))
                {
                    a.esm_syntax = true;
                }
            }
            "export" if depth == 0 => {
                if punct(i + 1, "{")
                    || matches!(t.get(i + 1), Some((Tok::Other, _)))
                    || matches!(
                        ident(i + 1),
                        Some("default" | "const" | "let" | "var" | "function" | "class" | "async")
                    )
                {
                    a.esm_syntax = true;
                }
            }
            "require" => {
                a.cjs_markers = true;
                if punct(i + 1, "(") && punct(i + 3, ")") {
                    if let Some(s) = string(i + 2) {
                        push_once(&mut a.requires, s);
                    }
                }
            }
            "module" | "exports" | "__filename" | "__dirname" => a.cjs_markers = true,
            "defineProperty" => {}
            "__exportStar" | "__export" => {
                if punct(i + 1, "(") && ident(i + 2) == Some("require") && punct(i + 3, "(") {
                    if let Some(s) = string(i + 4) {
                        push_once(&mut a.reexports, s);
                    }
                }
            }
            "Object" => {
                // Object.defineProperty(exports, "name", ...)
                if punct(i + 1, ".") && ident(i + 2) == Some("defineProperty") && punct(i + 3, "(")
                {
                    if let Some(j) = exports_at(i + 4) {
                        if punct(j, ",") {
                            if let Some(s) = string(j + 1) {
                                push_once(&mut a.exports, s);
                            }
                        }
                    }
                }
            }
            _ => {}
        }
        if word == "exports" || word == "module" {
            let Some(j) = exports_at(i) else { continue };
            if punct(j, ".") && punct(j + 2, "=") {
                if let Some(name) = ident(j + 1) {
                    push_once(&mut a.exports, name);
                }
            } else if punct(j, "[") && punct(j + 2, "]") && punct(j + 3, "=") {
                if let Some(name) = string(j + 1) {
                    push_once(&mut a.exports, name);
                }
            } else if word == "module" && punct(j, "=") {
                if ident(j + 1) == Some("require") && punct(j + 2, "(") {
                    if let Some(s) = string(j + 3) {
                        push_once(&mut a.reexports, s);
                    }
                } else if punct(j + 1, "{") {
                    object_keys(&t, j + 2, &mut a.exports);
                }
            }
        }
    }
    a
}

/// The keys of an object literal whose first entry is at `i`.
fn object_keys(t: &[(Tok, usize)], mut i: usize, out: &mut Vec<String>) {
    let Some((_, depth)) = t.get(i) else { return };
    let depth = *depth;
    let at_end = |i: usize| matches!(t.get(i), Some((Tok::Punct("," | "}"), d)) if *d == depth);
    while let Some((tok, _)) = t.get(i) {
        match tok {
            Tok::Punct("}") => return,
            Tok::Ident(k) | Tok::Str(k) => {
                let shorthand = matches!(tok, Tok::Ident(_)) && at_end(i + 1);
                let keyed = matches!(t.get(i + 1), Some((Tok::Punct(":"), _)));
                if shorthand || keyed {
                    push_once(out, k);
                }
            }
            _ => {}
        }
        // On to the next entry.
        i += 1;
        while i < t.len() && !at_end(i) {
            i += 1;
        }
        if matches!(t.get(i), Some((Tok::Punct("}"), _))) {
            return;
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_common_shapes() {
        let a = analyze(
            "'use strict'; // require('nope')\nObject.defineProperty(exports, \"__esModule\", { value: true });\nexports.a = 1; module.exports.b = function () {}; exports['c-d'] = 2;\nconst x = require('./x'); var re = /require('no')/g;\nmodule.exports = { e, f: 1, 'g': g(1, 2), ...h };\n__exportStar(require(\"./y\"), exports);",
        );
        assert!(!a.esm_syntax);
        assert!(a.cjs_markers);
        assert_eq!(a.requires, vec!["./x", "./y"]);
        assert_eq!(
            a.exports,
            vec!["__esModule", "a", "b", "c-d", "e", "f", "g"]
        );
        assert_eq!(a.reexports, vec!["./y"]);
        let b = analyze(
            "import x from './x.js';\nexport const y = `${x}`;\nconst z = import('./z.js');",
        );
        assert!(b.esm_syntax);
        let c = analyze("const m = await import('./x.js'); function f() { return a / b / c; }");
        assert!(!c.esm_syntax);
        let d = analyze("module.exports = require('./impl');");
        assert_eq!(d.reexports, vec!["./impl"]);
    }
}

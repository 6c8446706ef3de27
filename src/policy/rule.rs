//! The text of the rule that decided a call, as a call's audit record carries it: made once
//! per grant when a run starts, then shared by every call that grant decides. A call copies a
//! pointer, not the text (`Source::rule` formats or copies it, an allocation per call).

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// A rule's text: a fixed one (`default deny`, `always allowed`, ...) or a grant's, shared.
/// Two rules are equal when their texts are.
#[derive(Clone, Default)]
pub struct Rule(Text);

#[derive(Clone)]
enum Text {
    Fixed(&'static str),
    Shared(Arc<str>),
}

impl Default for Text {
    fn default() -> Self {
        Text::Fixed("")
    }
}

impl Rule {
    /// A rule whose text is a constant: nothing is allocated.
    pub const fn fixed(text: &'static str) -> Rule {
        Rule(Text::Fixed(text))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Text::Fixed(s) => s,
            Text::Shared(s) => s,
        }
    }
}

impl Deref for Rule {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl From<String> for Rule {
    fn from(text: String) -> Rule {
        Rule(Text::Shared(text.into()))
    }
}

impl From<&str> for Rule {
    fn from(text: &str) -> Rule {
        Rule(Text::Shared(text.into()))
    }
}

impl PartialEq for Rule {
    fn eq(&self, other: &Rule) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Rule {}

impl std::hash::Hash for Rule {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl PartialEq<str> for Rule {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Rule {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::Rule;

    #[test]
    fn a_shared_rule_and_a_fixed_one_compare_by_their_text() {
        let shared = Rule::from(String::from("--allow-env=HOME"));
        let copy = shared.clone();
        assert_eq!(copy, shared);
        assert_eq!(&*copy, "--allow-env=HOME");
        assert_eq!(Rule::fixed("default deny"), Rule::from("default deny"));
        assert_eq!(Rule::default().as_str(), "");
    }
}
